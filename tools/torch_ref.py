#!/usr/bin/env python3
"""torch_ref.py - the shapes of `make bench-vk` (bench/bench_vk.c, issue 10)
through PyTorch, as the reference the Vulkan figures are held against.

    python3 tools/torch_ref.py [--device cuda|cpu] [--small] [--csv FILE]
                               [--reps N] [--warmup N] [--no-compile]
                               [--only G1,G6,...] [--vk-csv build/bench-vk.csv]

Rows, in the CSV columns of bench_vk plus its `backend` column
(workload,variant,threads,median_ms,gb_s,gflop_s,ratio_to_limit,backend):
  G0    torch-copy: dst.copy_(src), 1 GiB read + written [--small: 32 MiB]
  G1-G5 the same formulas and shapes as bench_vk (f32), backend torch-eager
        (variant eager) and torch-compile (variant max-autotune, the
        --compile-mode: torch.compile(mode="max-autotune"); its first call,
        the compile, is timed apart and noted)
  G6-T1, G6-T512 [G6-T16]  one Llama-2-7B-shaped layer (dim 4096, 32 heads,
        head dim 128, FFN 11008, rope, causal attention as explicit products
        and softmax), all in f16 (weights and activations), eager and
        compiled
  G6-mm each matrix product of the layer at T=512 [16], cuBLAS f16 (variant
        names as in bench_vk: NAME-MxNxK[-bB], M outputs, N tokens, K summed,
        B products), backend cublas; G6-T1 gemv-only: the layer's seven
        weight products at T=1 alone (cuBLAS GEMV), bytes = the weights
GB/s counts every input read once and the output written once (G6-T1: the
weights); GFLOP/s is 2*M*N*K of the matrix products. ratio_to_limit is GB/s
over a copy limit: G0's torch copy of this run, or with --vk-csv the G0
shader-copy GB/s of a bench_vk CSV from the same machine (the issue's ratios:
one ceiling for every backend). Times are medians of --reps timed calls
(CUDA events on the GPU; a sample is a batch of back-to-back calls of at least
1 ms, so a short kernel is not timed as its launch) after --warmup calls. Compiled results are checked
against eager ones; the exit status is 1 if a row failed or mismatched.

Runs on CPU too (--device cpu --small) to check the script itself: G6 then
runs in float32 (--dtype), the products' backend is called torch-matmul, and
torch.compile needs PyTorch 2 (older versions skip the compiled rows).
"""
import argparse
import csv
import math
import os
import statistics
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the message a user sees, rather than a traceback
    print("torch_ref.py: PyTorch is not installed (pip install torch)", file=sys.stderr)
    sys.exit(2)

FAILED = []


# --- timing -------------------------------------------------------------------

def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def time_fn(fn, dev, warmup, reps, min_batch_ms=1.0):
    """median ms of one call of fn over reps samples, after warmup calls.
    A sample times a batch of back-to-back calls lasting >= min_batch_ms
    (found from the warm-up), so that a short kernel's time is not its
    launch latency; on the GPU between CUDA events"""
    for _ in range(max(warmup, 1)):
        fn()
    sync(dev)
    t0 = time.perf_counter()
    fn()
    sync(dev)
    one_ms = (time.perf_counter() - t0) * 1e3
    batch = max(1, min(1000, int(math.ceil(min_batch_ms / max(one_ms, 1e-3)))))
    times = []
    for _ in range(reps):
        if dev.type == "cuda":
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(batch):
                fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / batch)
        else:
            t0 = time.perf_counter()
            for _ in range(batch):
                fn()
            times.append((time.perf_counter() - t0) * 1e3 / batch)
    return statistics.median(times)


def compile_fn(fn, args):
    """torch.compile max-autotune, or None (with the reason) where it cannot"""
    if args.no_compile:
        return None, "--no-compile"
    if not hasattr(torch, "compile"):
        return None, "torch %s has no torch.compile" % torch.__version__
    try:
        return torch.compile(fn, mode=args.compile_mode), None
    except Exception as e:  # noqa: BLE001 - any failure is reported as a row
        return None, "torch.compile: %s" % str(e).splitlines()[0][:160]


def mark_step():
    """cudagraph trees (max-autotune) want each call marked as a new step"""
    m = getattr(getattr(torch, "compiler", None), "cudagraph_mark_step_begin", None)
    if m:
        m()


# --- output -------------------------------------------------------------------

class Out:
    def __init__(self, path, threads):
        self.threads = threads
        self.f = None
        if path:
            d = os.path.dirname(path)
            if d:
                os.makedirs(d, exist_ok=True)
            self.f = open(path, "w", newline="")
            self.w = csv.writer(self.f)
            self.w.writerow(["workload", "variant", "threads", "median_ms", "gb_s", "gflop_s", "ratio_to_limit", "backend"])
        print("%-10s %-24s %-13s %11s %9s %10s %7s  %s" % ("workload", "variant", "backend", "median_ms", "GB/s", "GFLOP/s", "ratio", "note"))
        print("-" * 100)

    def row(self, workload, variant, backend, ms, gbs=None, gflops=None, ratio=None, note="", to_csv=True):
        def f(v, fmt):
            return "" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt % v
        print("%-10s %-24s %-13s %11s %9s %10s %7s  %s" % (workload, variant, backend, f(ms, "%.4f"), f(gbs, "%.2f"),
                                                           f(gflops, "%.2f"), f(ratio, "%.3f"), note), flush=True)
        if self.f and to_csv:
            self.w.writerow([workload, variant, self.threads, f(ms, "%.4f"), f(gbs, "%.2f"), f(gflops, "%.2f"), f(ratio, "%.3f"), backend])
            self.f.flush()

    def fail(self, workload, variant, backend, what, err):
        FAILED.append("%s %s %s" % (workload, variant, backend))
        self.row(workload, variant, backend, None, note="FAILED %s: %s" % (what, str(err).splitlines()[0][:200] if str(err) else type(err).__name__))

    def close(self):
        if self.f:
            self.f.close()


def nbytes(*ts):
    return float(sum(t.numel() * t.element_size() for t in ts))


def rel_diff(a, ref):
    a = a.float()
    ref = ref.float()
    d = (a - ref).abs().max().item()
    r = ref.abs().max().item()
    if math.isnan(d):
        return math.inf
    return d / r if r > 0 else d


# --- G0 -----------------------------------------------------------------------

def run_g0(out, dev, args, vk_gbs):
    n = (32 << 20) if args.small else (1 << 30)
    src = torch.randn(n // 8, device=dev)   # n / 2 bytes of f32
    dst = torch.empty_like(src)
    ms = time_fn(lambda: dst.copy_(src), dev, args.warmup, args.reps)
    gbs = n / (ms * 1e6)
    ok = torch.equal(src, dst)
    if not ok:
        FAILED.append("G0 torch-copy")
    out.row("G0", "torch-copy", "torch-eager", ms, gbs, None, gbs / vk_gbs if vk_gbs else 1.0,
            "limit: dst.copy_(src), %d MiB read + written%s" % (n >> 20, "" if ok else ", WRONG COPY"))
    return gbs


# --- G1-G5 --------------------------------------------------------------------

def rms_norm(x, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def causal_mask(n_kv, n_q, dev, dtype=torch.float32):
    """tfu_causal_mask: row j (a query) sees keys i <= j + n_kv - n_q"""
    i = torch.arange(n_kv, device=dev).view(1, n_kv)
    j = torch.arange(n_q, device=dev).view(n_q, 1)
    m = torch.zeros(n_q, n_kv, device=dev, dtype=dtype)
    return m.masked_fill(i > j + (n_kv - n_q), float("-inf"))


def elementwise_workloads(dev, small):
    """(name, fn, inputs): torch shapes are tensorfuse's reversed (ne0 last)"""
    def rnd(*shape):
        return torch.rand(*shape, device=dev) * 2 - 1

    T1 = 32 if small else 8192
    T3 = 16 if small else 4096
    T4 = 32 if small else 16384
    Q5, H5 = (128, 1) if small else (1024, 64)
    w = {}
    w["G1"] = (lambda x, wt: rms_norm(x, 1e-6) * wt, [rnd(T1, 4096), rnd(4096)])
    w["G2"] = (lambda x, wt, r: rms_norm(x, 1e-6) * wt + r, [rnd(T1, 4096), rnd(4096), rnd(T1, 4096)])
    w["G3"] = (lambda g, u: F.silu(g) * u, [rnd(T3, 11008), rnd(T3, 11008)])
    w["G4"] = (lambda a, b, c: F.gelu((a + b) * c, approximate="tanh") * 0.5, [rnd(T4, 4096), rnd(T4, 4096), rnd(T4, 4096)])
    w["G5"] = (lambda x, m: torch.softmax(x * 0.125 + m, dim=-1), [rnd(H5, Q5, 1024), causal_mask(1024, Q5, dev)])
    return w


def selected(name, only):
    """--only: a workload by name, or every workload under a prefix (G6: G6-T1, G6-mm, ...)"""
    return not only or any(name == s or name.startswith(s + "-") for s in only.split(",") if s)


def run_eager_and_compiled(out, workload, fn, inputs, dev, args, bytes_=None, flops=None, limit=None, tol=1e-3, ratio_bytes=True):
    """the eager and the compiled row of fn(*inputs)"""
    with torch.no_grad():
        try:
            ref = fn(*inputs)
            if bytes_ is None:
                bytes_ = nbytes(*inputs) + nbytes(ref)
            ms = time_fn(lambda: fn(*inputs), dev, args.warmup, args.reps)
        except Exception as e:  # noqa: BLE001
            out.fail(workload, "eager", "torch-eager", "run", e)
            return
        gbs = bytes_ / (ms * 1e6) if bytes_ else None
        gfs = flops / (ms * 1e6) if flops else None
        ratio = gbs / limit if (ratio_bytes and gbs and limit) else None
        out.row(workload, "eager", "torch-eager", ms, gbs, gfs, ratio)
        ms_eager = ms
        cfn, why = compile_fn(fn, args)
        if cfn is None:
            out.row(workload, args.compile_mode, "torch-compile", None, note="skipped: %s" % why, to_csv=False)
            return
        try:
            t0 = time.perf_counter()
            mark_step()
            got = cfn(*inputs)
            sync(dev)
            t_compile = time.perf_counter() - t0
            d = rel_diff(got, ref)
            del got

            def call():
                mark_step()
                cfn(*inputs)
            ms = time_fn(call, dev, args.warmup, args.reps)
        except Exception as e:  # noqa: BLE001
            out.fail(workload, args.compile_mode, "torch-compile", "compile or run", e)
            return
        gbs = bytes_ / (ms * 1e6) if bytes_ else None
        gfs = flops / (ms * 1e6) if flops else None
        ratio = gbs / limit if (ratio_bytes and gbs and limit) else None
        note = "x%.2f vs eager, first call (compile) %.1f s" % (ms_eager / ms, t_compile)
        if not d <= tol:
            note += ", MISMATCH %.2e vs eager" % d
            FAILED.append("%s %s" % (workload, args.compile_mode))
        out.row(workload, args.compile_mode, "torch-compile", ms, gbs, gfs, ratio, note)


# --- G6 -----------------------------------------------------------------------

def llama_dims(small):
    if small:
        return dict(dim=256, heads=2, hd=128, ffn=688)
    return dict(dim=4096, heads=32, hd=128, ffn=11008)


def llama_weight_bytes(c, wsize=2):
    """as examples/llama.h: matrices in wsize bytes, two f32 norm vectors"""
    q = c["heads"] * c["hd"]
    matrices = c["dim"] * q * 2 + 2 * c["dim"] * q + 3 * c["dim"] * c["ffn"]
    return float(matrices * wsize + 2 * c["dim"] * 4)


def llama_flops(c, T):
    q = c["heads"] * c["hd"]
    params = c["dim"] * q * 4 + 3 * c["dim"] * c["ffn"]
    return 2.0 * params * T + 2.0 * T * T * c["hd"] * c["heads"] * 2


def make_layer(c, T, dev, dtype):
    """weights (torch layout: out x in) and inputs of one layer; rope tables
    for positions 0..T-1 (NEOX: the two halves of a head rotate together)"""
    g = torch.Generator(device="cpu").manual_seed(1234)
    dim, H, hd, ffn = c["dim"], c["heads"], c["hd"], c["ffn"]
    q = H * hd

    def mat(m, k):
        t = (torch.rand(m, k, generator=g) * 2 - 1) * math.sqrt(3.0 / k)
        return t.to(device=dev, dtype=dtype)
    W = dict(wq=mat(q, dim), wk=mat(q, dim), wv=mat(q, dim), wo=mat(dim, q),
             wg=mat(ffn, dim), wu=mat(ffn, dim), wd=mat(dim, ffn),
             an=(1 + 0.1 * (torch.rand(dim, generator=g) * 2 - 1)).to(device=dev, dtype=dtype),
             fn=(1 + 0.1 * (torch.rand(dim, generator=g) * 2 - 1)).to(device=dev, dtype=dtype))
    x = (torch.rand(T, dim, generator=g) * 2 - 1).to(device=dev, dtype=dtype)
    inv = 10000.0 ** (-torch.arange(0, hd // 2, dtype=torch.float64) * 2.0 / hd)
    ang = torch.arange(T, dtype=torch.float64).view(T, 1) * inv.view(1, -1)
    cos = ang.cos().to(device=dev, dtype=dtype)
    sin = ang.sin().to(device=dev, dtype=dtype)
    mask = causal_mask(T, T, dev, dtype)
    return W, x, cos, sin, mask


def llama_layer(c, T):
    H, hd = c["heads"], c["hd"]
    eps = 1e-5
    scale = 1.0 / math.sqrt(hd)

    def rope(t, cos, sin):           # t: T x H x hd
        a, b = t[..., : hd // 2], t[..., hd // 2:]
        cs = cos.view(T, 1, hd // 2)
        sn = sin.view(T, 1, hd // 2)
        return torch.cat([a * cs - b * sn, a * sn + b * cs], dim=-1)

    def layer(x, W, cos, sin, mask):
        xn = rms_norm(x, eps) * W["an"]
        q = F.linear(xn, W["wq"]).view(T, H, hd)
        k = F.linear(xn, W["wk"]).view(T, H, hd)
        v = F.linear(xn, W["wv"]).view(T, H, hd)
        q = rope(q, cos, sin).transpose(0, 1)          # H x T x hd
        k = rope(k, cos, sin).transpose(0, 1)
        v = v.transpose(0, 1)
        kq = torch.softmax(torch.matmul(q, k.transpose(1, 2)) * scale + mask, dim=-1)
        a = torch.matmul(kq, v).transpose(0, 1).reshape(T, H * hd)
        x = x + F.linear(a, W["wo"])
        h = rms_norm(x, eps) * W["fn"]
        return x + F.linear(F.silu(F.linear(h, W["wg"])) * F.linear(h, W["wu"]), W["wd"])
    return layer


def run_g6(out, T, dev, args, limit):
    c = llama_dims(args.small)
    name = "G6-T%d" % T
    dtype = args.dtype
    try:
        W, x, cos, sin, mask = make_layer(c, T, dev, dtype)
    except Exception as e:  # noqa: BLE001
        out.fail(name, "eager", "torch-eager", "build", e)
        return None
    layer = llama_layer(c, T)
    wb = llama_weight_bytes(c, args.dtype_size)
    run_eager_and_compiled(out, name, lambda x_: layer(x_, W, cos, sin, mask), [x], dev, args,
                           bytes_=wb, flops=llama_flops(c, T), limit=limit, tol=2e-2, ratio_bytes=(T == 1))
    return W


def mm_shapes(c, T):
    q = c["heads"] * c["hd"]
    return [("wqkvo", True, c["dim"], T, q, 1), ("wgu", True, c["ffn"], T, c["dim"], 1), ("wd", True, c["dim"], T, c["ffn"], 1),
            ("kq", False, T, T, c["hd"], c["heads"]), ("kqv", False, c["hd"], T, T, c["heads"])]


def run_mm(out, T, dev, args):
    c = llama_dims(args.small)
    for nm, weight, M, N, K, B in mm_shapes(c, T):
        variant = "%s-%dx%dx%d" % (nm, M, N, K) + ("-b%d" % B if B > 1 else "")
        try:
            with torch.no_grad():
                if weight:
                    w = torch.randn(M, K, device=dev, dtype=args.dtype)
                    a = torch.randn(N, K, device=dev, dtype=args.dtype)
                    def fn(a=a, w=w):
                        return F.linear(a, w)           # N x M = a * w^T
                else:
                    w = torch.randn(B, N, K, device=dev, dtype=args.dtype)
                    a = torch.randn(B, K, M, device=dev, dtype=args.dtype)
                    def fn(a=a, w=w):
                        return torch.bmm(w, a)          # B x N x M
                fn()
                ms = time_fn(fn, dev, args.warmup, args.reps)
        except Exception as e:  # noqa: BLE001
            out.fail("G6-mm", variant, args.mm_backend, "run", e)
            continue
        fl = 2.0 * M * N * K * B
        out.row("G6-mm", variant, args.mm_backend, ms, None, fl / (ms * 1e6), None,
                "%.1f TFLOP/s, %s in and out" % (fl / (ms * 1e9), args.dtype_name))


def run_gemv(out, W, dev, args, limit):
    """the seven weight products of a layer at T=1, nothing else"""
    c = llama_dims(args.small)
    try:
        with torch.no_grad():
            x = torch.randn(1, c["dim"], device=dev, dtype=args.dtype)
            h = torch.randn(1, c["ffn"], device=dev, dtype=args.dtype)

            def fn():
                for k in ("wq", "wk", "wv", "wo", "wg", "wu"):
                    F.linear(x, W[k])
                F.linear(h, W["wd"])
            ms = time_fn(fn, dev, args.warmup, args.reps)
    except Exception as e:  # noqa: BLE001
        out.fail("G6-T1", "gemv-only", args.mm_backend, "run", e)
        return
    wb = llama_weight_bytes(c, args.dtype_size) - 2 * c["dim"] * 4
    gbs = wb / (ms * 1e6)
    out.row("G6-T1", "gemv-only", args.mm_backend, ms, gbs, None, gbs / limit if limit else None, "the 7 weight GEMVs of the layer, back to back")


def vk_limit(path):
    """G0 shader-copy GB/s from a bench_vk CSV, or None"""
    try:
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                if r.get("workload") == "G0" and r.get("variant") == "shader-copy" and r.get("gb_s"):
                    return float(r["gb_s"])
    except OSError as e:
        print("torch_ref.py: %s: %s" % (path, e), file=sys.stderr)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cuda (default where there is one) or cpu")
    ap.add_argument("--small", action="store_true", help="bench_vk --small's shapes")
    ap.add_argument("--csv", default="build/torch-ref.csv", help="CSV output (default build/torch-ref.csv; '' for none)")
    ap.add_argument("--reps", type=int, default=None, help="timed calls per row (default 50, --small 5)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed calls first (default 5, --small 2)")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    ap.add_argument("--compile-mode", default="max-autotune", help="torch.compile's mode (default max-autotune)")
    ap.add_argument("--only", default="", help="comma-separated workload prefixes: G0,G1,...,G6,G6-mm")
    ap.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default=None,
                    help="G6 and its products (default float16; float32 on the CPU, where PyTorch may lack f16 kernels)")
    ap.add_argument("--vk-csv", default="", help="a bench_vk CSV whose G0 shader-copy GB/s is the ratios' limit")
    args = ap.parse_args()
    args.reps = args.reps or (5 if args.small else 50)
    args.warmup = args.warmup if args.warmup is not None else (2 if args.small else 5)
    if args.reps < 1 or args.warmup < 0:
        ap.error("--reps >= 1, --warmup >= 0")
    dev = torch.device(args.device)
    args.dtype_name = args.dtype or ("float32" if dev.type == "cpu" else "float16")
    args.dtype = getattr(torch, args.dtype_name)
    args.dtype_size = torch.tensor([], dtype=args.dtype).element_size()
    args.mm_backend = "cublas" if dev.type == "cuda" else "torch-matmul"
    if dev.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device (use --device cpu)")
    torch.manual_seed(0)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False   # f32 rows are f32
        p = torch.cuda.get_device_properties(dev)
        desc = "%s, %d SMs, %.0f GiB, CUDA %s" % (p.name, p.multi_processor_count, p.total_memory / 2**30, torch.version.cuda)
        threads = 1
    else:
        desc = "CPU, %d threads" % torch.get_num_threads()
        threads = torch.get_num_threads()
    print("torch_ref%s: torch %s on %s; medians of %d timed calls after %d warm-up calls" %
          (" (--small)" if args.small else "", torch.__version__, desc, args.reps, args.warmup))

    v = vk_limit(args.vk_csv) if args.vk_csv else None
    if v:
        print("ratios against the Vulkan shader copy in %s: %.2f GB/s" % (args.vk_csv, v))
    elif args.vk_csv:
        print("no G0 shader-copy row in %s: ratios against torch's copy" % args.vk_csv)
    out = Out(args.csv, threads)
    torch_copy = run_g0(out, dev, args, v)
    limit = v or torch_copy
    for name, (fn, inputs) in elementwise_workloads(dev, args.small).items():
        if selected(name, args.only):
            run_eager_and_compiled(out, name, fn, inputs, dev, args, limit=limit)
            del inputs
    T_big = 16 if args.small else 512
    W = None
    if selected("G6-T1", args.only):
        W = run_g6(out, 1, dev, args, limit)
        if W is not None:
            run_gemv(out, W, dev, args, limit)
    if selected("G6-T%d" % T_big, args.only):
        run_g6(out, T_big, dev, args, limit)
    if selected("G6-mm", args.only):
        run_mm(out, T_big, dev, args)
    out.close()
    if args.csv:
        print("\nCSV: %s" % args.csv)
    if FAILED:
        print("FAILED or MISMATCHED: %s" % ", ".join(FAILED))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
