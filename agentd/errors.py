"""The exception tree of agentd.

Callers catch at the level they mean::

    AgentdError                      root: anything agentd raises on purpose
    ├── UsageError                   a user mistake: bad argument, bad path  -> exit 2
    │   └── ConfigError              a config file is missing, unparsable or invalid
    ├── DaemonError                  the daemon's own lifecycle
    │   ├── AlreadyRunningError      another daemon holds the state directory's lock
    │   └── DaemonNotRunningError    `agentd ctl` found no daemon behind the socket
    ├── AdminError                   an admin request was refused (bad JSON, unknown command …)
    ├── SandboxError                 the jail could not run an action (not: the action failed)
    │   └── JailUnavailableError     the configured jailer is missing or cannot create namespaces
    ├── DatasetError                 fetching, extracting or building tasks failed
    │   └── UnsafeSourceError        a download or archive broke a security rule
    ├── StateError                   the state store
    │   └── StateConflictError       compare-and-swap lost: somebody saved a newer version
    ├── PolicyError                  an LLM endpoint could not give an answer
    │   ├── EndpointUnavailableError connection refused, circuit open, not ready
    │   ├── EndpointTimeoutError     the request outlived its timeout
    │   ├── EndpointResponseError    the server answered with an error or garbage
    │   └── PromptTooLongError       the prompt and its reserved answer exceed the context
    ├── EpisodeTimeoutError          a lease of an episode outlived episodes.episode_timeout_s
    ├── TrajectoryError              a trajectory file is torn, duplicated or invalid
    └── RefusedInputError            hostile input stopped at a boundary (a path that escapes,
                                     a rule that cannot be re-encoded, a body over its cap);
                                     the code that raises it turns it into data (an
                                     invalid_action result, a parse error, a fallback)

Everything a model writes is hostile input and is *not* an exception: parse failures,
invalid actions and rejected state updates are data in the step's record.
"""

from __future__ import annotations


class AgentdError(Exception):
    """Root of every error agentd raises on purpose."""


class UsageError(AgentdError):
    """A user mistake: the CLI prints one line and exits 2."""


class ConfigError(UsageError):
    """A config file is missing, unparsable or has an invalid value."""


class DaemonError(AgentdError):
    """The daemon's lifecycle failed."""


class AlreadyRunningError(DaemonError, UsageError):
    """Another daemon holds the lock on this state directory."""


class DaemonNotRunningError(DaemonError, UsageError):
    """No daemon answers on the admin socket."""


class AdminError(AgentdError):
    """An admin request was refused; ``remote_class`` names the daemon-side error class."""

    remote_class: str = ""


class SandboxError(AgentdError):
    """The sandbox could not run an action at all."""


class JailUnavailableError(SandboxError):
    """The configured jailer is missing or does not work on this host."""


class DatasetError(AgentdError):
    """Fetching, extracting or building tasks failed."""


class UnsafeSourceError(DatasetError):
    """A download or an archive broke a security rule."""


class StateError(AgentdError):
    """The state store failed."""


class StateConflictError(StateError):
    """A compare-and-swap save lost against a newer version."""


class PolicyError(AgentdError):
    """An LLM endpoint could not produce an answer."""


class EndpointUnavailableError(PolicyError):
    """Connection refused, circuit open, or the endpoint is not ready."""


class EndpointTimeoutError(PolicyError):
    """A request outlived its timeout."""


class EndpointResponseError(PolicyError):
    """The endpoint answered with an error status or an unparsable body."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s  # the server's Retry-After, when it sent one


class PromptTooLongError(PolicyError):
    """The prompt plus the reserved ``max_tokens`` do not fit the endpoint's context window.

    Raised before sending when agentd counted the prompt, or from the server's own context 400.
    Never retried: the same prompt overflows the same window every time.
    """


class EpisodeTimeoutError(AgentdError):
    """One lease of an episode ran past ``episodes.episode_timeout_s``.

    The steps it committed stay; the episode goes back to the queue (bounded by
    ``queue.max_attempts``) and resumes at its next step.
    """


class TrajectoryError(AgentdError):
    """A trajectory file is torn, duplicated or invalid."""


class RefusedInputError(AgentdError):
    """Hostile input refused at a boundary; caught near where it is raised and made data."""
