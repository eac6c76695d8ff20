"""`Output`: the commands one engine step emits, in order (openraft ``EngineOutput``).

Every handler that asks the runtime for something is given the step's `Output`;
`raftx.engine.Engine.step` hands the list to the runtime (`raftx.engine.commands`
for the ordering and condition rules).
"""

from __future__ import annotations

from typing import Any

from raftx.engine.commands import Command, Condition, Respond

__all__ = ["Output"]


class Output:
    """The command list of the current step."""

    __slots__ = ("commands",)

    def __init__(self) -> None:
        self.commands: list[Command] = []

    def emit(self, cmd: Command) -> None:
        self.commands.append(cmd)

    def respond(self, responder: Any, value: Any, when: Condition | None = None) -> None:
        """Resolve ``responder`` (None: nobody asked) with ``value``, once ``when`` holds."""
        if responder is not None:
            self.commands.append(Respond(responder, value, when))

    def take(self) -> list[Command]:
        """The commands emitted since the last call, oldest first."""
        out, self.commands = self.commands, []
        return out
