"""Files the package reads and writes: atomic writes, strict JSON, weights (:mod:`.files`), and
the one restricted unpickler every pickle goes through (:mod:`.pickles`)."""
from rdrop_paddle.io.files import (MAX_DEPTH, MAX_NODES, Budget, as_weights, atomic_write, check_fits, digest,
                                   load_paddle, make_folder, read_json, open_regular, refuse_links, save_paddle, sha256,
                                   write_json)
from rdrop_paddle.io.pickles import load_pickle

__all__ = ["load_pickle", "load_paddle", "atomic_write", "save_paddle", "write_json", "read_json", "open_regular",
           "make_folder", "refuse_links", "sha256", "digest", "as_weights", "check_fits", "Budget", "MAX_DEPTH",
           "MAX_NODES"]
