"""Token-exact columns: the ids the endpoint returned, and which tokens a trainer learns.

Re-tokenising a recorded text rarely gives back the ids the model produced (chat templates,
merges across the prompt/completion boundary, special tokens), and the drift shows up as a
train/inference mismatch. So when a record carries the server's ``prompt_token_ids`` and
``completion_token_ids`` the export passes them through untouched and says so in
``token_ids_source``; a record without them has no ids and a ``None`` source — the export
never guesses.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from agentd.records import Usage

# Only the server for now: a local tokenizer would be a re-tokenisation, exactly what these
# columns exist to avoid; if one is ever added it gets its own value ("local_tokenizer").
TokenSource = Literal["server"]
FROM_SERVER: TokenSource = "server"


class TokenColumns(TypedDict):
    """``loss_mask`` covers ``prompt_token_ids + completion_token_ids``: 0 prompt, 1 target."""

    prompt_token_ids: list[int] | None
    completion_token_ids: list[int] | None
    loss_mask: list[int] | None
    token_ids_source: TokenSource | None


def token_columns(usage: Usage) -> TokenColumns:
    """The row's token columns; all ``None`` unless the server returned both id lists."""
    prompt, completion = usage.prompt_token_ids, usage.completion_token_ids
    if prompt is None or completion is None:
        return TokenColumns(prompt_token_ids=None, completion_token_ids=None, loss_mask=None,
                            token_ids_source=None)
    return TokenColumns(prompt_token_ids=list(prompt), completion_token_ids=list(completion),
                        loss_mask=[0] * len(prompt) + [1] * len(completion),
                        token_ids_source=FROM_SERVER)
