"""Domain errors of the offline pipeline.

Each is an expected failure with a one-line message; the CLI prints the message and exits
non-zero without a traceback.
"""


class FraudOpsError(Exception):
    """Base class of every expected, user-facing failure."""


class ConfigError(FraudOpsError):
    """A configuration file is missing, unreadable, or holds a value that is not allowed."""


class DataContractError(FraudOpsError):
    """Input data breaks the transaction contract (missing column, unreadable file, ...)."""


class QuarantineLimitError(DataContractError):
    """More rows were quarantined than the configured share allows."""


class ProtocolError(FraudOpsError):
    """The training protocol (folds, block days, start date) does not fit the data."""


class ServiceError(FraudOpsError):
    """The scoring service answered a request with an error."""


# A file a command's one-line failure is also appended to, when set: how a stage's command,
# run by `dvc repro` as a child process, tells its caller what went wrong
# (pipelines/cli.py writes it, pipelines/versioning.py reads it).
ERROR_FILE_ENV = "FRAUDOPS_ERROR_FILE"
