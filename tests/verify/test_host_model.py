"""HostModel: the generated C in-process, each call between guard bytes,
large batches spread over threads with the same results and the same
first failure as one thread."""

import numpy as np
import pytest

from edgegen.errors import VerificationFailure
from edgegen.verify.host_model import MIN_VECTORS_PER_THREAD, HostModel, ModelSizes

SIZES = ModelSizes("m", input_size=4, output_size=2, arena_size=8)
MODEL_C = r"""
#include "m.h"
/* A stand-in model: out = (in0 + in1, in2); in3 == 77 writes one byte past
 * the output, in3 == 99 returns an error. */
int m_invoke(const int8_t *input, int8_t *output, int8_t *arena)
{
    arena[0] = input[0];
    output[0] = (int8_t)(input[0] + input[1]);
    output[1] = input[2];
    if (input[3] == 77) {
        output[2] = 1;
    }
    return input[3] == 99;
}
"""
HEADER = """#include <stdint.h>
#define M_INPUT_SIZE 4
#define M_OUTPUT_SIZE 2
#define M_ARENA_SIZE 8
int m_invoke(const int8_t *input, int8_t *output, int8_t *arena);
"""


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("m")
    (folder / "m.h").write_text(HEADER)
    (folder / "m.c").write_text(MODEL_C)
    (folder / "m_weights.h").write_text("#include <stdint.h>\n")
    (folder / "m_weights.c").write_text('#include "m.h"\nconst int8_t m_nothing = 0;\n')
    (folder / "runtime").mkdir()
    (folder / "runtime" / "none.c").write_text("int m_runtime_none(void);\n"
                                               "int m_runtime_none(void) { return 0; }\n")
    return HostModel(folder, SIZES, folder / "build")


def vectors(count, seed=0):
    x = np.random.default_rng(seed).integers(-20, 20, size=(count, 4)).astype(np.int8)
    x[:, 3] = 0
    return x


@pytest.mark.parametrize("count", [5, 4 * MIN_VECTORS_PER_THREAD + 3])
def test_outputs_in_order_whatever_the_threads(model, count):
    x = vectors(count)
    expected = np.stack([(x[:, 0] + x[:, 1]).astype(np.int8), x[:, 2]], axis=1)
    np.testing.assert_array_equal(model.run(x), expected)


@pytest.mark.parametrize("count", [50, 4 * MIN_VECTORS_PER_THREAD + 3])
@pytest.mark.parametrize("marker,what", [(77, "wrote past the end of its output"),
                                         (99, "returned 1")])
def test_the_first_failing_vector_is_named(model, count, marker, what):
    x = vectors(count)
    x[count - 2, 3] = marker
    x[count // 3, 3] = marker
    with pytest.raises(VerificationFailure, match=f"{what}.* on vector {count // 3}$"):
        model.run(x)
