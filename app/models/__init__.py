"""ORM models; importing this package registers every table on `Base.metadata`."""

from app.models.agent import Agent, RegisteredSource
from app.models.alert import (
    AckLinkUse,
    Alert,
    AlertDelivery,
    AlertDigest,
    AlertRoute,
    AlertSchedule,
    AlertSilence,
    Incident,
    KakaoCredential,
    SourceFlap,
    SourceOutage,
)
from app.models.base import Base
from app.models.event import Episode, Event, Source
from app.models.feedback import AnswerFeedback, Rating
from app.models.invite import Invite, InviteUse, PasswordResetToken
from app.models.job import Job, JobState
from app.models.knowledge import (
    Conversation,
    ConversationTurn,
    KnowledgeChunk,
    KnowledgeDocument,
    KnowledgeIndexChange,
    KnowledgeIndexState,
)
from app.models.learning import (
    EpisodeLabel,
    EpisodeLabelChange,
    ModelActivation,
    ModelOrigin,
    ModelVersion,
)
from app.models.usage import LLMUsageDay
from app.models.user import User

__all__ = [
    "AckLinkUse",
    "Agent",
    "Alert",
    "AlertDelivery",
    "AlertDigest",
    "AlertRoute",
    "AlertSchedule",
    "AlertSilence",
    "AnswerFeedback",
    "Base",
    "Conversation",
    "ConversationTurn",
    "Episode",
    "EpisodeLabel",
    "EpisodeLabelChange",
    "Event",
    "Incident",
    "Invite",
    "InviteUse",
    "Job",
    "JobState",
    "KakaoCredential",
    "KnowledgeChunk",
    "KnowledgeDocument",
    "KnowledgeIndexChange",
    "KnowledgeIndexState",
    "LLMUsageDay",
    "ModelActivation",
    "ModelOrigin",
    "ModelVersion",
    "PasswordResetToken",
    "Rating",
    "RegisteredSource",
    "Source",
    "SourceFlap",
    "SourceOutage",
    "User",
]
