"""Nearest-neighbour index over question embeddings (inner product on unit vectors = cosine).

The index is also where the vectors live (the history keeps no second copy), so its kind sets both
search speed and memory. Kinds (``spec``):

- ``"auto"`` (default): ``"flat"`` until ``auto_threshold`` (50,000) questions, then converted once
  to ``"ivf-sq8"`` (training takes a few seconds, during that ``add``).
- ``"flat"``: float32 vectors, exact search, always. 1.5 KB per 384-d question.
- ``"sq8"`` / ``"fp16"``: exact scan over 8-bit / 16-bit scalar-quantised vectors (4x / 2x smaller).
- ``"ivf-sq8"``: inverted lists (``nlist`` k-means cells, ``nprobe`` scanned) over 8-bit codes:
  ~400 bytes per question, sub-millisecond search at 1M; the recall cost is measured by
  ``benchmarks/latency.py``.
- ``"ivf-pq"``: inverted lists over product-quantised codes (``pq_m`` bytes per vector), smallest.
- ``"hnsw-sq8"``: HNSW graph over 8-bit codes (slow to build on few cores).
- a faiss factory string from the allow-list of `scope_shared.history.index_spec` (e.g.
  ``"IVF256,PQ16x8"``); anything outside it raises `ScopeError` before faiss sees it (faiss
  crashes the process on some strings, and specs come from untrusted store manifests).

Kinds that need training (all but ``"flat"``) keep vectors in a float32 buffer, searched exactly,
until ``train_size`` of them have arrived; then they train on that buffer and move it in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import faiss
import numpy as np

from scope_shared.errors import InvalidSettingError
from scope_shared.history.index_spec import ALIASES, check_index_config

#: query batches smaller than this are searched single-threaded (routing batches are small; a
#: single query was 2-4x slower with faiss's default threads on 2 shared cores)
SMALL_BATCH = 256
_CONFIG_KEYS = {"spec", "nlist", "nprobe", "pq_m", "ef_search", "train_size", "auto_threshold"}


class VectorIndex:
    """Vectors (ids = insertion order) and k-nearest search over them.

    Args:
        dim: vector dimension.
        spec: index kind (see the module docstring).
        nlist / nprobe: inverted-list cells and cells scanned per query (IVF kinds).
        pq_m: bytes per vector for ``"ivf-pq"`` (must divide ``dim``).
        ef_search: HNSW search breadth.
        train_size: vectors buffered before training (default ``max(40 * nlist, 2000)``).
        auto_threshold: size at which ``"auto"`` leaves exact float32 search.
    """

    def __init__(
        self,
        dim: int,
        spec: str = "auto",
        *,
        nlist: int = 1024,
        nprobe: int = 24,
        pq_m: int = 48,
        ef_search: int = 64,
        train_size: int | None = None,
        auto_threshold: int = 50_000,
    ) -> None:
        check_index_config(dim, spec, nlist, nprobe, pq_m, ef_search, train_size, auto_threshold)
        self.dim = dim
        self.spec = spec
        self.nlist, self.nprobe, self.pq_m, self.ef_search = nlist, nprobe, pq_m, ef_search
        self.auto_threshold = auto_threshold
        self.train_size = train_size or max(40 * nlist, 2000)
        self._vecs = np.zeros((0, dim), np.float32)  # flat storage / training buffer
        self._n_flat = 0
        self._faiss: faiss.Index | None = None
        if spec not in ("flat", "auto"):
            self._factory()  # fail early on a bad spec
            self._faiss = None

    # ---------------------------------------------------------------- config
    def config(self) -> dict[str, object]:
        """What `from_config` needs to rebuild an equivalent index (stored in history manifests)."""
        return {
            "spec": self.spec,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "pq_m": self.pq_m,
            "ef_search": self.ef_search,
            "train_size": self.train_size,
            "auto_threshold": self.auto_threshold,
        }

    @classmethod
    def from_config(cls, dim: int, config: dict[str, object] | str | None) -> "VectorIndex":
        if config is None:
            return cls(dim)
        if isinstance(config, str):
            return cls(dim, config)
        if not isinstance(config, dict):
            raise InvalidSettingError(f"index configuration must be a string or a mapping, got {type(config).__name__}")
        unknown = sorted(map(str, set(config) - _CONFIG_KEYS))
        if unknown:
            raise InvalidSettingError(f"unknown vector index settings: {', '.join(unknown)[:200]}")
        return cls(dim, **config)  # type: ignore[arg-type]

    def _factory_string(self) -> str:
        spec = "ivf-sq8" if self.spec == "auto" else self.spec
        return ALIASES[spec].format(nlist=self.nlist, pq_m=self.pq_m) if spec in ALIASES else spec

    def _factory(self) -> faiss.Index:
        try:
            index = faiss.index_factory(self.dim, self._factory_string(), faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            raise InvalidSettingError(f"bad vector index spec {self.spec!r}: {str(exc).splitlines()[-1]}") from None
        return index

    @property
    def exact(self) -> bool:
        """True while searches are exact (float32 storage)."""
        return self._faiss is None

    # ---------------------------------------------------------------- size
    def __len__(self) -> int:
        return self._n_flat if self._faiss is None else int(self._faiss.ntotal)

    def nbytes(self) -> int:
        """Approximate memory held by vectors, codes and ids."""
        if self._faiss is None:
            return int(self._vecs.nbytes)
        n = int(self._faiss.ntotal)
        ivf = faiss.try_extract_index_ivf(self._faiss)
        per = self._faiss.sa_code_size() if hasattr(self._faiss, "sa_code_size") else 0
        extra = 16 if ivf is not None else 0  # list id + direct map
        if hasattr(self._faiss, "hnsw"):
            extra += 2 * 32 * 4
        return n * (per + extra) + (ivf.quantizer.ntotal * self.dim * 4 if ivf is not None else 0)

    # ---------------------------------------------------------------- writing
    def add(self, vectors: np.ndarray) -> None:
        """Append vectors; their ids are their positions."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self._faiss is not None:
            self._faiss.add(vectors)
            return
        need = self._n_flat + len(vectors)
        if need > len(self._vecs):
            grown = np.zeros((max(need, 2 * len(self._vecs), 1024), self.dim), np.float32)
            grown[: self._n_flat] = self._vecs[: self._n_flat]
            self._vecs = grown
        self._vecs[self._n_flat : need] = vectors
        self._n_flat = need
        if self.spec == "flat":
            return
        if (self.spec == "auto" and need >= self.auto_threshold) or (self.spec != "auto" and need >= self.train_size):
            try:
                self._train_and_move()
            except RuntimeError as exc:  # faiss refused (e.g. too few points for the codebook)
                self._n_flat -= len(vectors)
                raise InvalidSettingError(f"vector index {self._factory_string()!r} could not be trained: "
                                 f"{str(exc).splitlines()[-1][:200]}") from None

    def _train_and_move(self) -> None:
        index = self._factory()
        data = self._vecs[: self._n_flat]
        if not index.is_trained:
            rng = np.random.default_rng(0)
            n_train = min(len(data), self.train_size)
            sample = data if n_train == len(data) else data[np.sort(rng.choice(len(data), n_train, replace=False))]
            index.train(np.ascontiguousarray(sample))
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None:
            ivf.set_direct_map_type(faiss.DirectMap.Array)
            ivf.nprobe = self.nprobe
        if hasattr(index, "hnsw"):
            index.hnsw.efSearch = self.ef_search
        for start in range(0, len(data), 65536):
            index.add(np.ascontiguousarray(data[start : start + 65536]))
        self._faiss = index
        self._vecs = np.zeros((0, self.dim), np.float32)
        self._n_flat = 0

    # ---------------------------------------------------------------- reading
    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """float32 vectors of the given ids (decoded, hence approximate, for quantised kinds)."""
        ids = np.asarray(ids, dtype=np.int64)
        if self._faiss is None:
            return self._vecs[ids]
        if len(ids) == 0:
            return np.zeros((0, self.dim), np.float32)
        return self._faiss.reconstruct_batch(ids)

    def all_vectors(self) -> np.ndarray:
        """Every vector (a view for flat storage, a decoded copy otherwise)."""
        if self._faiss is None:
            return self._vecs[: self._n_flat]
        return self._faiss.reconstruct_n(0, int(self._faiss.ntotal))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (similarities, ids), each (n_queries, k), best first; id -1 where fewer exist."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = max(1, min(k, len(self)))
        if len(self) == 0:
            return np.zeros((len(queries), 1), np.float32), np.full((len(queries), 1), -1, np.int64)
        with _threads_for(len(queries)):
            if self._faiss is not None:
                return self._faiss.search(queries, k)
            return faiss.knn(queries, self._vecs[: self._n_flat], k, metric=faiss.METRIC_INNER_PRODUCT)


@contextmanager
def _threads_for(n_queries: int) -> Iterator[None]:
    """Search up to a few hundred queries on one thread: OpenMP gains little there, and its
    spinning workers slow the caller down badly on a busy machine (measured: 2-4x on 2 shared
    cores). ``omp_set_num_threads`` sets the calling thread's value only."""
    if n_queries >= SMALL_BATCH:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
