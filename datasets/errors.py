"""Exceptions raised by :mod:`suanli.datasets`."""

from __future__ import annotations


class DatasetError(Exception):
    """Data that cannot be read, written or used as asked.

    The message names what is wrong and where: the file or store, and where it
    applies the variable, column or chunk; the same facts are kept as attributes
    so callers can act on them.
    """

    def __init__(self, message: str, *, path: str | None = None, variable: str | None = None,
                 column: str | None = None, chunk: tuple[int, ...] | None = None) -> None:
        self.path = path
        self.variable = variable
        self.column = column
        self.chunk = chunk
        where = [f"{name} {value!r}" for name, value in
                 (("path", path), ("variable", variable), ("column", column), ("chunk", chunk))
                 if value is not None]
        self.message = message
        super().__init__(f"{message} ({', '.join(where)})" if where else message)

    def __reduce__(self) -> tuple[object, ...]:
        # Raised inside tasks on workers: it must survive pickling whole.
        return (_rebuild, (self.message, self.path, self.variable, self.column, self.chunk))


def _rebuild(message: str, path: str | None, variable: str | None, column: str | None,
             chunk: tuple[int, ...] | None) -> DatasetError:
    return DatasetError(message, path=path, variable=variable, column=column, chunk=chunk)
