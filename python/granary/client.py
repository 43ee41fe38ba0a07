"""granary.Client: the compiled client plus the conveniences written in Python."""

import heapq

from . import _granary
from .errors import InternalError, NotFoundError


class Client(_granary.Client):
    __doc__ = _granary.Client.__doc__

    def list_all(self, bucket, prefix="", delimiter="", start_after="", page_size=1000):
        """Yields every object whose key starts with `prefix`, in key order, fetching pages of
        `page_size` with list() and following the continuation tokens.

        Items are ObjectInfo. When `delimiter` is set, the common prefixes are yielded too, as
        str (each ending with the delimiter), in their place in key order, as `ls` shows them.
        The generator fetches the next page only when the previous one is consumed; errors
        raise from the iteration that needed the page.
        """
        token = ""
        while True:
            page = self.list(bucket, prefix=prefix, delimiter=delimiter,
                             start_after=start_after, max_keys=page_size,
                             continuation_token=token)
            if page.common_prefixes:
                yield from heapq.merge(page.objects, page.common_prefixes,
                                       key=lambda x: x if isinstance(x, str) else x.key)
            else:
                yield from page.objects
            if not page.truncated:
                return
            if not page.next_continuation_token or page.next_continuation_token == token:
                raise InternalError("the server returned a truncated listing without a new "
                                    "continuation token", "internal")
            token = page.next_continuation_token

    def exists(self, bucket, key):
        """True if the object exists, False if not (other errors raise)."""
        try:
            self.head(bucket, key)
        except NotFoundError:
            return False
        return True
