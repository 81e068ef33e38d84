"""ORM models; importing this package registers every table on `Base.metadata`."""

from app.models.base import Base
from app.models.knowledge import Conversation, ConversationTurn, KnowledgeDocument
from app.models.user import User

__all__ = ["Base", "Conversation", "ConversationTurn", "KnowledgeDocument", "User"]
