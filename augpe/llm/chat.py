"""Chat formats shared by the backends: a conversation as plain text, for a model or endpoint
that takes a prompt instead of messages."""

from __future__ import annotations

from collections.abc import Sequence

from augpe.llm.base import Message

__all__ = ["messages_to_prompt", "transcript"]


def messages_to_prompt(messages: Sequence[Message]) -> str:
    """Plain-text rendering of a chat for the completions endpoint (base models).

    Turns become paragraphs; a base model continues after the final blank line. A last assistant
    turn is the start of the answer (a prompt set's `answer_prefix`): the prompt ends with it, as
    written, and the model continues it. Prompt sets meant for base models should read naturally
    this way.
    """
    prefix = ""
    if messages and messages[-1].get("role") == "assistant":
        prefix = messages[-1].get("content", "")
        messages = messages[:-1]
    body = "\n\n".join(m.get("content", "").strip() for m in messages if m.get("content"))
    return body + "\n\n" + prefix


def transcript(messages: Sequence[Message]) -> str:
    """A chat as "Role: content" lines ending with "Assistant:", for a model without a chat
    template."""
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join(lines) + "\nAssistant:"
