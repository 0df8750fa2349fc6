"""The llama.cpp load probe: the real library passes; stand-in builds that die
with a real SIGSEGV (a NULL read in native code, as the AMX fault does) or
SIGILL become a verdict that names the cause and the rebuild command, and
r2local raises that message instead of crashing."""

import textwrap
import time

import pytest

from r2local import paths
from r2local.backends import llamaprobe
from r2local.backends.llamacpp import LlamaCppBackend
from r2local.errors import ModelError

STANDIN = '''
import ctypes, os, signal
__version__ = "0.3.36"
SYSTEM_INFO = {system_info!r}
CRASH = {crash!r}        # "decode", "decode-default" (only with extra buffer types on) or "import"

def _die():
    if {sigill!r}:
        os.kill(os.getpid(), signal.SIGILL)
    ctypes.string_at(0)   # a real segmentation fault in native code

if CRASH == "import":
    _die()

class _P:
    use_extra_bufts = True
    n_ctx = n_batch = n_ubatch = n_threads = n_threads_batch = 0

llama_token = ctypes.c_int32
def llama_backend_init(): pass
def llama_print_system_info(): return SYSTEM_INFO.encode()
def llama_model_default_params(): return _P()
def llama_context_default_params(): return _P()
def llama_model_load_from_file(path, params):
    global _extra
    _extra = params.use_extra_bufts
    return 1
def llama_init_from_model(model, params): return 1
def llama_batch_get_one(tokens, n): return n
def llama_decode(ctx, batch):
    if CRASH == "decode" or (CRASH == "decode-default" and _extra and batch > 1):
        _die()
    return 0
def llama_get_logits_ith(ctx, i): return [0.0] * 8
def llama_free(ctx): pass
def llama_model_free(model): pass
'''

AMX_INFO = "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | AVX512_VNNI = 1 | AMX_INT8 = 1 | OPENMP = 1 | REPACK = 1 | "
PLAIN_INFO = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | OPENMP = 1 | REPACK = 1 | "


@pytest.fixture
def standin(tmp_path, monkeypatch):
    """Put a fake llama_cpp first on the probe child's path."""

    def make(crash: str, system_info: str = AMX_INFO, sigill: bool = False):
        pkg = tmp_path / "standin" / "llama_cpp"
        pkg.mkdir(parents=True, exist_ok=True)
        pkg.joinpath("__init__.py").write_text(STANDIN.format(system_info=system_info, crash=crash, sigill=sigill))
        monkeypatch.setenv("PYTHONPATH", str(tmp_path / "standin"))
        (paths.cache_dir() / "llamacpp-probe.json").unlink(missing_ok=True)  # the session's verdict
        llamaprobe.reset()

    yield make
    llamaprobe.reset()


def test_the_real_library_passes_and_the_verdict_is_cached():
    start = time.perf_counter()
    verdict = llamaprobe.check(force=True)
    assert verdict.status == "ok" and not verdict.cached, verdict
    assert verdict.version and "CPU" in verdict.system_info and verdict.features()
    assert time.perf_counter() - start < 60
    start = time.perf_counter()
    again = llamaprobe.check()
    assert again.cached and again.status == "ok" and again.key == verdict.key
    assert time.perf_counter() - start < 0.5  # later starts cost a few stats


def test_the_cache_key_follows_the_library(tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "libllama.so").write_bytes(b"one")
    monkeypatch.setenv("LLAMA_CPP_LIB_PATH", str(lib))
    _, first = llamaprobe.library_key()
    (lib / "libllama.so").write_bytes(b"a rebuilt library")
    _, second = llamaprobe.library_key()
    assert first and second and first != second


def test_a_segfaulting_amx_build_is_caught_with_the_rebuild_command(standin):
    standin("decode")
    verdict = llamaprobe.check()
    assert verdict.status == "crashed" and verdict.detail == "SIGSEGV in its first decode"
    assert verdict.uses_amx and "Intel AMX" in verdict.message()
    assert 'CFLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"' in verdict.rebuild_command()
    assert "--no-binary llama-cpp-python" in verdict.rebuild_command()
    assert llamaprobe.check().cached  # a crash verdict is remembered too


def test_sigill_at_import_without_amx_names_the_portable_build(standin):
    standin("import", system_info=PLAIN_INFO, sigill=True)
    verdict = llamaprobe.check()
    assert verdict.status == "crashed" and verdict.detail == "SIGILL while loading the library"
    assert 'CMAKE_ARGS="-DGGML_NATIVE=OFF"' in verdict.rebuild_command()


def test_fallback_when_only_the_repacked_kernels_crash(standin):
    standin("decode-default")
    verdict = llamaprobe.check()
    assert verdict.status == "fallback" and verdict.usable
    assert "weight repacking off" in verdict.message()


def test_load_raises_the_message_instead_of_crashing(standin, smol_path):
    standin("decode")
    backend = LlamaCppBackend(smol_path, threads=1)
    with pytest.raises(ModelError) as info:
        backend._load()
    assert "llama.cpp crashes on this machine" in info.value.message
    assert info.value.fix.startswith("rebuild llama-cpp-python: CFLAGS=")


def test_fallback_loads_the_real_model_without_extra_buffer_types(smol_path, monkeypatch):
    ok = llamaprobe.check()
    monkeypatch.setattr(llamaprobe, "_verdict", llamaprobe.Verdict("fallback", "SIGSEGV in its first decode",
                                                                   ok.version, AMX_INFO, ok.key))
    backend = LlamaCppBackend(smol_path, threads=1, n_ctx=512)
    try:
        llm = backend._load()
        assert llm.model_params.use_extra_bufts is False
        text = "".join(c.text for c in backend.stream([{"role": "user", "content": "Say hi."}], max_tokens=4))
        assert text.strip()
    finally:
        backend.close()
    import llama_cpp.llama_cpp as C

    assert C.llama_model_default_params().use_extra_bufts is True  # restored after the load


def test_doctor_style_features_parse():
    verdict = llamaprobe.Verdict("ok", system_info=textwrap.dedent(AMX_INFO))
    assert verdict.features() == ["SSE3", "AVX2", "AVX512", "AVX512_VNNI", "AMX_INT8", "OPENMP", "REPACK"]


def test_r2local_ask_with_a_crashing_build_prints_the_fix_not_a_segfault(standin, r2home):
    """The README's user path: the first question on a build that dies in llama.cpp."""
    import subprocess
    import sys

    standin("import", sigill=True)  # dies as soon as llama_cpp is imported: r2local must probe first
    out = subprocess.run([sys.executable, "-m", "r2local", "ask", "What is 2 + 2?"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 1, (out.returncode, out.stderr[-2000:])
    assert "error: llama.cpp crashes on this machine: SIGILL while loading the library" in out.stderr
    assert "fix: rebuild llama-cpp-python: CMAKE_ARGS=\"-DGGML_NATIVE=OFF\"" in out.stderr  # no system info: portable
    assert "Traceback" not in out.stderr
