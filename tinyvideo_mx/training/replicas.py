"""How the replicas of the networks agree: over the contexts of one process and over worker processes.

Training is data parallel. Every replica (one per context per worker) computes gradients on its slice
of the global batch, with its loss weighted by the slice's share of the *global* batch, so that the sum
of all replicas' gradients is the gradient of the global batch mean. ``Replicas`` then

* sums gradients over all replicas (``sum_gradients``) before each optimiser step,
* starts every replica from rank 0's weights (``broadcast``),
* averages BN running statistics after every iteration (``average``): they are updated per replica
  from its slice, and checkpoints must hold the state training continues from,
* sums the logged losses (``sum_scalars``), so every worker logs the global batch's numbers.

Transport: MXNet's kvstore. ``device``/``local`` within one process, ``dist_sync`` /
``dist_device_sync`` (ps-lite parameter servers, started by ``tinyvideo-mx launch`` or the dmlc
tracker) across processes and machines, or Horovod's allreduce (``kind="horovod"``).

Why not Gluon's Trainer(kvstore=...): G and D have a Trainer each, and a Trainer names its kvstore keys
0, 1, 2... - two Trainers on one distributed kvstore collide (D's key 0 is G's key 0). Here every key is
a parameter's name, and the optimiser runs on the workers (``update_on_kvstore=False`` in Gluon's
terms), so Adam's state is local and goes into checkpoints for an exact resume (server-side optimiser
state cannot be saved in MXNet 1.9.1).
"""
import mxnet as mx

from ..errors import SettingError

DISTRIBUTED_KINDS = ("dist_sync", "dist_device_sync")
LOCAL_KINDS = ("device", "local")
KINDS = LOCAL_KINDS + DISTRIBUTED_KINDS + ("horovod",)


def trained(params):
    return [p for p in params.values() if p.grad_req != "null"]


def statistics(params):
    return [p for p in params.values() if p.grad_req == "null"]


class Replicas:
    """The replicas of one process (``contexts``) and, for distributed kinds, of all workers."""

    def __init__(self, contexts, kind="device"):
        if kind not in KINDS:
            raise SettingError(f"kvstore must be one of {KINDS}, got {kind!r}")
        self.contexts = list(contexts)
        self.distributed = kind in DISTRIBUTED_KINDS or kind == "horovod"
        self._kv, self._hvd, self._known = None, None, set()
        if kind == "horovod":
            self._hvd = _import_horovod()
            self._hvd.init()
            self.rank, self.world_size = self._hvd.rank(), self._hvd.size()
        elif self.distributed:
            self._kv = mx.kv.create(kind)
            self.rank, self.world_size = self._kv.rank, self._kv.num_workers
        else:
            self.rank, self.world_size = 0, 1
            if len(self.contexts) > 1:
                self._kv = mx.kv.create(kind)

    @property
    def count(self):
        """Replicas in all (contexts x workers)."""
        return len(self.contexts) * self.world_size

    @property
    def is_chief(self):
        """Rank 0 writes checkpoints, samples and logs."""
        return self.rank == 0

    # -- the operations ---------------------------------------------------------------------------
    def sum_gradients(self, params):
        """Sum each trained parameter's gradients over all replicas, in place on every replica."""
        if self.count == 1:
            return
        self._reduce([(f"grad:{p.name}", p.list_grad()) for p in trained(params)])

    def average(self, params):
        """Average the BN running statistics over all replicas, in place."""
        if self.count == 1:
            return
        pairs = [(f"stat:{p.name}", p.list_data()) for p in statistics(params)]
        self._reduce(pairs)
        for _, arrays in pairs:
            for a in arrays:
                a /= self.count

    def broadcast(self, params):
        """Copy rank 0's (context 0's) weights and statistics to every replica."""
        if self.count == 1:
            return
        values = list(params.values())
        if self._hvd is not None:
            for p in values:
                self._hvd.broadcast_(p.data(self.contexts[0]), root_rank=0, name=f"init:{p.name}")
        elif self.distributed:
            keys = [f"init:{p.name}" for p in values]
            self._kv.init(keys, [p.data(self.contexts[0]) for p in values])    # the server keeps rank 0's
            self._kv.pull(keys, out=[p.data(self.contexts[0]) for p in values])
        for p in values:
            source = p.data(self.contexts[0])
            for other in p.list_data()[1:]:
                source.copyto(other)

    def sum_scalars(self, values):
        """{name: float} summed over workers (each worker's values are its share of the global mean)."""
        if self.world_size == 1:
            return dict(values)
        names = sorted(values)
        array = mx.nd.array([values[n] for n in names], ctx=mx.cpu())
        self._reduce([("scalars", [array])])
        return dict(zip(names, (float(v) for v in array.asnumpy())))

    # -- transport --------------------------------------------------------------------------------
    def _reduce(self, pairs):
        """Replace every array in ``pairs`` ([(key, [array per context])]) by the sum over all replicas."""
        if self._hvd is not None:
            for key, arrays in pairs:
                local = arrays[0] if len(arrays) == 1 else mx.nd.add_n(*(a.as_in_context(arrays[0].context)
                                                                         for a in arrays))
                self._hvd.allreduce_(local, average=False, name=key)
                if len(arrays) > 1:
                    for a in arrays:
                        local.copyto(a)
            return
        new = [(k, a) for k, a in pairs if k not in self._known]
        if new:
            # Every worker initialises keys in the same order (the string -> integer key map of the
            # kvstore is built in that order); the stored values are replaced by the first push.
            self._kv.init([k for k, _ in new], [a[0].zeros_like() for _, a in new])
            self._known.update(k for k, _ in new)
        keys = [k for k, _ in pairs]
        arrays = [a for _, a in pairs]
        if self.distributed:
            self._kv.push(keys, arrays)
            self._kv.pull(keys, out=arrays)
        else:
            self._kv.pushpull(keys, arrays, out=arrays)

    def barrier(self):
        """Wait until every worker gets here with all its collectives done: MXNet runs them
        asynchronously, and a worker that exits while a partner's operation is still in flight kills the
        partner (Horovod: "Horovod has been shut down", seen once in 14 suite runs before this wait)."""
        mx.nd.waitall()
        if self._hvd is not None:
            self._hvd.allreduce(mx.nd.zeros(1), name="barrier").wait_to_read()
        elif self.distributed:
            self._kv._barrier()   # public in later MXNets; 1.9.1 has only the underscored name


def _import_horovod():
    try:
        import horovod.mxnet as hvd
    except ImportError as e:
        raise SettingError("kvstore 'horovod' needs Horovod built with MXNet support: pip install wheel==0.45.1 && "
                         "HOROVOD_WITH_MXNET=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 pip install --no-build-isolation "
                         f"horovod==0.28.1 (README, 'Several machines, mixed precision'); import failed: {e}") from e
    return hvd
