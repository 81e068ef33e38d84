"""ORM models; importing this package registers every table on `Base.metadata`."""

from app.models.alert import Alert, KakaoCredential
from app.models.base import Base
from app.models.event import Episode, Event, Source
from app.models.job import Job, JobState
from app.models.knowledge import Conversation, ConversationTurn, KnowledgeDocument
from app.models.user import User

__all__ = [
    "Alert",
    "Base",
    "Conversation",
    "ConversationTurn",
    "Episode",
    "Event",
    "Job",
    "JobState",
    "KakaoCredential",
    "KnowledgeDocument",
    "Source",
    "User",
]
