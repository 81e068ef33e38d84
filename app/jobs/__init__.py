"""Background jobs: the taskiq queue, the job functions and the `sentinel worker` process."""
