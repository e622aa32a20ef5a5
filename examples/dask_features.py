"""Features of an image stack larger than memory: conv -> ReLU -> max-pool with cyconv.dask.

The stack is a chunked Zarr store on disk (created once, chunk by chunk, by the
workers). A LocalCluster whose workers each have a memory limit reads it chunk
by chunk, runs a 3x3 "same" convolution, a ReLU and a 2x2 max-pool, and
reduces each image to the global average of its pooled channels: one feature
vector per image. No process ever holds the stack.

Run (needs ``pip install -e ".[dask]"``):

    python examples/dask_features.py            # 2.2 GB stack, 2 workers x 256 MB
    python examples/dask_features.py --images 64 --size 64    # a quick run

Prints a progress bar, the throughput (images/s) and the peak memory of every
process (its maximum resident set size).
"""
import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster, progress

import cyconv.dask


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=2800, help="images in the stack (default 2800)")
    p.add_argument("--size", type=int, default=256, help="height and width (default 256)")
    p.add_argument("--channels", type=int, default=3, help="input channels (default 3)")
    p.add_argument("--features", type=int, default=16, help="convolution filters (default 16)")
    p.add_argument("--chunk", type=int, default=8, help="images per chunk (default 8)")
    p.add_argument("--tile", type=int, default=None,
                   help="also tile height and width into TILE x TILE chunks (default: whole "
                        "images; tiles are for images too large for one task)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--memory-limit", default="256MB", help="per worker (default 256MB)")
    p.add_argument("--store", type=Path, default=None,
                   help="Zarr store of the stack, created if missing and kept "
                        "(default: a temporary one, removed at the end)")
    return p.parse_args()


def _gb(n_bytes):
    return f"{n_bytes / 1e9:.2f} GB" if n_bytes >= 1e9 else f"{n_bytes / 1e6:.1f} MB"


def _max_rss_bytes():
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def open_or_create_stack(client, path, shape, chunk):
    """The stack as a lazy Dask array; written by the workers, chunk by chunk, if missing."""
    try:
        stack = da.from_zarr(str(path))
        if stack.shape == shape:
            return stack
    except Exception:  # no store yet (or another one): (re)create it
        pass
    print(f"creating the stack {shape} float32 in {path} ...")
    rng = da.random.default_rng(0)
    stack = rng.random(shape, dtype=np.float32, chunks=(chunk, -1, -1, -1))
    progress(client.compute(da.to_zarr(stack, str(path), overwrite=True, compute=False)))
    print()
    return da.from_zarr(str(path))


def main():
    args = parse_args()
    shape = (args.images, args.size, args.size, args.channels)
    tmp = None
    store = args.store
    if store is None:
        tmp = tempfile.mkdtemp(prefix="cyconv-dask-")
        store = Path(tmp) / "stack.zarr"
    # One thread per worker and per kernel call: workers x threads = cores.
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                           memory_limit=args.memory_limit, host="127.0.0.1",
                           dashboard_address=None)
    client = Client(cluster)
    try:
        x = open_or_create_stack(client, store, shape, args.chunk)
        tile = args.tile or args.size
        x = x.rechunk((args.chunk, tile, tile, -1))  # a no-op for the store's own chunks
        # Fresh worker processes, so their peak memory is that of this run alone.
        client.restart()

        rng = np.random.default_rng(1)
        w = rng.standard_normal((3, 3, args.channels, args.features)).astype(np.float32)
        w *= np.float32(np.sqrt(2.0 / (9 * args.channels)))  # He initialisation
        b = np.zeros(args.features, dtype=np.float32)
        z = cyconv.dask.conv2d(x, w, b, padding="same", num_threads=1)
        p = cyconv.dask.max_pool2d(da.maximum(z, 0), 2, num_threads=1)
        features = p.mean(axis=(1, 2))  # (images, features): one vector per image

        limit = cluster.workers[next(iter(cluster.workers))].memory_manager.memory_limit
        print(f"stack: {shape} float32 = {_gb(x.nbytes)} in chunks of {x.chunksize} "
              f"({_gb(np.prod(x.chunksize) * 4)}); {args.workers} workers x "
              f"{_gb(limit)} limit = {_gb(args.workers * limit)} "
              f"(stack / memory = {x.nbytes / (args.workers * limit):.1f}x)")
        t0 = time.perf_counter()
        future = client.compute(features)
        progress(future)
        result = future.result()
        elapsed = time.perf_counter() - t0
        print()

        peaks = client.run(_max_rss_bytes)
        print(f"features: {result.shape} {result.dtype}, mean {result.mean():.4f}")
        print(f"throughput: {args.images / elapsed:.1f} images/s "
              f"({args.images} images in {elapsed:.1f} s, {_gb(x.nbytes / elapsed)}/s)")
        print("peak memory (max RSS): "
              + ", ".join(f"worker {i} {_gb(v)}" for i, v in enumerate(peaks.values()))
              + f"; driver {_gb(_max_rss_bytes())}")
    finally:
        client.close()
        cluster.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
