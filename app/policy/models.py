"""Policy state shared by every app instance: an epoch bumped whenever partners or groups change."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, PrimaryKeyConstraint, update
from sqlmodel import Field, Session, SQLModel, col


class PolicyState(SQLModel, table=True):
    """One row. Instances compare ``epoch`` with the one their decision cache was built at."""

    __tablename__ = "policy_state"
    __table_args__ = (PrimaryKeyConstraint("id", name="pk_policy_state"),)

    id: int = Field(default=1, sa_column=Column(Integer, nullable=False))
    epoch: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


def bump_epoch(session: Session) -> None:
    """Invalidate every instance's decision cache; part of the caller's transaction."""
    session.execute(update(PolicyState).where(col(PolicyState.id) == 1).values(epoch=PolicyState.epoch + 1))
