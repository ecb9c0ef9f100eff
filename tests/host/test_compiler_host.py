"""edgegen.host.compiler: finding the compiler, compiling, cdef extraction, loading."""

import subprocess
import textwrap

import cffi
import pytest

from edgegen import paths
from edgegen.host import compiler as host
from edgegen.errors import UserError


def test_find_compiler_default_is_on_path():
    assert host.find_compiler().endswith(("cc", "gcc"))


def test_missing_default_compiler_is_a_user_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory
    with pytest.raises(UserError) as err:
        host.find_compiler()
    assert str(err.value) == (
        "C compiler 'gcc' not found: install it (apt-get install gcc) or pass --cc PATH"
    )


def test_missing_named_compiler_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="'no-such-cc-1234' not found"):
        host.find_compiler("no-such-cc-1234")
    with pytest.raises(UserError, match="not found"):
        host.compile_shared_library([tmp_path / "x.c"], [], tmp_path / "x.so",
                                    cc=str(tmp_path / "missing" / "gcc"))


def test_compile_error_is_a_user_error_with_the_compiler_message(tmp_path):
    source = tmp_path / "broken.c"
    source.write_text("int f(void) { return undeclared_thing; }\n")
    output = tmp_path / "libbroken.so"
    with pytest.raises(UserError) as err:
        host.compile_shared_library([source], [], output)
    message = str(err.value)
    assert host.find_compiler() in message
    assert "broken.c" in message
    assert "undeclared_thing" in message  # the compiler's own error line
    assert not output.exists()
    assert list(tmp_path.iterdir()) == [source]  # no half-written leftovers


def test_compiler_output_is_cut_to_the_first_lines(tmp_path):
    source = tmp_path / "many.c"
    source.write_text("".join(f"int f{i}(void) {{ return u{i}; }}\n" for i in range(40)))
    with pytest.raises(UserError) as err:
        host.compile_shared_library([source], [], tmp_path / "libmany.so")
    message = str(err.value)
    assert "u0" in message
    assert "u39" not in message
    assert "more lines" in message


def test_warnings_are_errors(tmp_path):
    source = tmp_path / "warn.c"
    source.write_text("int f(void) { int unused; return 0; }\n")
    with pytest.raises(UserError, match="unused"):
        host.compile_shared_library([source], [], tmp_path / "libwarn.so")


def test_compile_and_load_shared_library(tmp_path):
    include = tmp_path / "include"
    include.mkdir()
    (include / "add.h").write_text(textwrap.dedent("""\
        #include <stdint.h>
        /* cdef-begin */
        /* Adds, in 32 bits. */
        int32_t add(int32_t a, int32_t b);
        /* cdef-end */
        """))
    source = tmp_path / "add.c"
    source.write_text('#include "add.h"\nint32_t add(int32_t a, int32_t b) { return a + b; }\n')
    library = host.compile_shared_library([source], [include], tmp_path / "out" / "libadd.so")
    assert library == tmp_path / "out" / "libadd.so"
    ffi, lib = host.load_library(library, host.cdef_from_header(include / "add.h"))
    assert isinstance(ffi, cffi.FFI)
    assert lib.add(40, 2) == 42


def test_compile_executable_runs(tmp_path):
    source = tmp_path / "main.c"
    source.write_text("#include <stdio.h>\nint main(void) { puts(\"hello\"); return 3; }\n")
    program = host.compile_executable([source], [], tmp_path / "hello")
    run = subprocess.run([str(program)], capture_output=True, text=True)
    assert (run.returncode, run.stdout) == (3, "hello\n")


def test_cdef_from_header_returns_the_marked_region(tmp_path):
    header = tmp_path / "h.h"
    header.write_text("#include <x.h>\n/* cdef-begin */\nint f(int);\n/* cdef-end */\n#endif\n")
    assert host.cdef_from_header(header) == "\nint f(int);\n"


@pytest.mark.parametrize(
    "text",
    ["int f(int);\n", "/* cdef-begin */\nint f(int);\n", "/* cdef-end */\n/* cdef-begin */\n"],
)
def test_cdef_from_header_without_markers_raises(tmp_path, text):
    header = tmp_path / "h.h"
    header.write_text(text)
    with pytest.raises(ValueError, match="cdef"):
        host.cdef_from_header(header)


def test_runtime_header_region_parses_in_cffi():
    cdef = host.cdef_from_header(paths.RUNTIME_HEADER)
    ffi = cffi.FFI()
    ffi.cdef(cdef)
    assert ffi.sizeof("eg_shape") == 12
    pointer = ffi.sizeof("void *")
    unpadded = pointer * 2 + 5 * 4  # two arrays, four int32 fields and the enum
    assert ffi.sizeof("eg_requant") == -(-unpadded // pointer) * pointer
    assert ffi.sizeof("eg_sparse_weights") > 0 and ffi.sizeof("eg_huffman_weights") > 0


def test_build_runtime_library(tmp_path):
    ffi, lib = host.build_runtime_library(tmp_path)
    assert (tmp_path / host.RUNTIME_LIBRARY_NAME).exists()
    assert lib.EG_OK == 0 and lib.EG_ERR_ARG == 1
    assert lib.eg_rounding_divide_by_pot(-3, 1) == -2
