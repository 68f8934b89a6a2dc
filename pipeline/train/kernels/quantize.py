"""Row-wise FP8 (e4m3) quantization: the eager reference, the fast path for this device, and the one-copy
cache for an input several projections read.

Every activation and output gradient of a frozen FP8 GEMM is quantized per row (token): the row's absmax,
divided by 448, rounded to e4m3. `RowQuantizer` picks the fastest path that runs here, once: the one-pass
Triton kernel on CUDA (`quantize_triton.py`; 1 read + 1 write per element), else torch.compile's kernel
(two reads), else eager (CPU, or when compiling fails); a path that fails is said once and not tried again.

`SharedInput` keeps the last activation quantized with its FP8 copy: projections that read the same input
(q/k/v read one normed hidden state, gate/up another) quantize it once. A call on the same storage, shape,
strides and version counter (nothing wrote to it since) takes the copy; holding the tensor keeps its memory
from being handed to another tensor, so a pointer match is the same values.

    from pipeline.train.kernels.quantize import RowQuantizer, SharedInput, quantize_rows
    q, scale = quantize_rows(x)                      # eager reference: x ~= q * scale, scale (rows, 1) fp32
    quantizer = RowQuantizer(triton=True)            # quantizer(x) -> the same, by the fastest path here
    shared = SharedInput(quantizer, counters=c); shared(x)   # once per input (c.shared_inputs: saved)
"""
from __future__ import annotations

import torch

FP8 = torch.float8_e4m3fn
FP8_MAX = 448.0


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x as e4m3, per-row float32 scale (rows x 1)) with x ~= q * scale."""
    amax = x.abs().amax(dim=-1, keepdim=True).float().clamp(min=1e-12)
    scale = amax / FP8_MAX
    return (x.float() / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8), scale


class RowQuantizer:
    """quantize_rows by the fastest path that runs here (see the module). `triton=False` skips the Triton kernel
    (a bench's before/after)."""

    def __init__(self, triton: bool = True):
        self.triton = triton
        self._kernel = None if triton else False   # quantize_triton.quantize_rows, False once it could not run
        self._compiled = None                      # torch.compile(quantize_rows), quantize_rows once that failed

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.is_cuda and self._kernel is not False:
            try:
                if self._kernel is None:
                    from pipeline.train.kernels import quantize_triton  # heavy: triton

                    self._kernel = quantize_triton.quantize_rows
                return self._kernel(x)
            except Exception as e:  # noqa: BLE001 - no Triton / kernel failed to build: the compiled path is correct
                print(f"[train] fp8: the Triton quantizer cannot run ({type(e).__name__}: {str(e)[:200]}); "
                      f"torch.compile's instead", flush=True)
                self._kernel = False
        return self.compiled(x)

    def compiled(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """quantize_rows fused by torch.compile on CUDA; eager on CPU or once compiling failed (said once)."""
        if not x.is_cuda:
            return quantize_rows(x)
        if self._compiled is None:
            self._compiled = torch.compile(quantize_rows, fullgraph=True)
        if self._compiled is not quantize_rows:
            try:
                if x.shape[0] > 1:
                    # rows vary with packing (every micro-batch has its own token count): one kernel for any
                    # number of rows from the first call, not a compile per shape
                    torch._dynamo.mark_dynamic(x, 0)
                return self._compiled(x)
            except Exception as e:  # noqa: BLE001 - no Triton / no compiler: eager is correct, only slower
                print(f"[train] fp8: torch.compile of the quantizer failed ({type(e).__name__}: {e}); eager", flush=True)
                self._compiled = quantize_rows
        return quantize_rows(x)


class SharedInput:
    """The quantizer, once per input: the last activation quantized, its version then, and its FP8 copy."""

    def __init__(self, quantizer: RowQuantizer, share: bool = True, counters=None):
        self.quantizer, self.share = quantizer, share
        self.counters = counters           # kernels.Counters: shared_inputs counts the quantizations saved
        self.x: torch.Tensor | None = None
        self.version = -1
        self.quantized: tuple[torch.Tensor, torch.Tensor] | None = None

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.share:
            return self.quantizer(x)
        last = self.x
        if (last is not None and last.data_ptr() == x.data_ptr() and last.shape == x.shape
                and last.stride() == x.stride() and last.dtype == x.dtype and self.version == x._version):
            if self.counters is not None:
                self.counters.shared_inputs += 1
            return self.quantized
        self.forget()                      # release the previous one before the new copy
        quantized = self.quantizer(x)
        self.x, self.version, self.quantized = x, x._version, quantized
        return quantized

    def forget(self) -> None:
        """Drop the held activation (after a step, before measuring memory)."""
        self.x, self.version, self.quantized = None, -1, None
