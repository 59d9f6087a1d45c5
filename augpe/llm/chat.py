"""Chat formats shared by the backends: a conversation as plain text, for a model or endpoint
that takes a prompt instead of messages."""

from __future__ import annotations

from collections.abc import Sequence

from augpe.llm.base import Message

__all__ = ["answer_prefix", "messages_to_prompt", "transcript"]


def messages_to_prompt(messages: Sequence[Message]) -> str:
    """Plain-text rendering of a chat for the completions endpoint (base models).

    Turns become paragraphs; a base model continues after the final blank line. A last assistant
    turn is the start of the answer (a prompt set's `answer_prefix`): the prompt ends with it, as
    written, and the model continues it. Prompt sets meant for base models should read naturally
    this way.
    """
    turns, prefix = answer_prefix(messages)
    body = "\n\n".join(m.get("content", "").strip() for m in turns if m.get("content"))
    return body + "\n\n" + prefix


def answer_prefix(messages: Sequence[Message]) -> tuple[Sequence[Message], str]:
    """The turns before the answer, and the answer's start: a last assistant turn (a prompt set's
    `answer_prefix`) is the beginning of the reply the model continues, not a finished turn."""
    if messages and messages[-1].get("role") == "assistant":
        return messages[:-1], messages[-1].get("content", "")
    return messages, ""


def transcript(messages: Sequence[Message]) -> str:
    """A chat as "Role: content" lines ending with "Assistant:" (and the answer's start, if the
    last turn is an assistant's), for a model without a chat template."""
    turns, prefix = answer_prefix(messages)
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in turns]
    return "\n".join(lines) + "\nAssistant:" + (f" {prefix}" if prefix else "")
