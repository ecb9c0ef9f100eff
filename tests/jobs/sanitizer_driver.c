/* Runs a generated model on the vectors of input.bin and writes output.bin.
 * Built with -fsanitize=address,undefined by the tests: any out-of-bounds
 * access or undefined behaviour in the generated code or the runtime aborts.
 * EG_HEADER, EG_INVOKE, EG_INPUT_SIZE, EG_OUTPUT_SIZE, EG_ARENA_SIZE come
 * from -D flags. The arena is allocated at exactly its declared size so that
 * ASan sees an access one byte past it. */
#include <stdio.h>
#include <stdlib.h>

#include EG_HEADER

int main(int argc, char **argv)
{
    FILE *in, *out;
    int8_t input[EG_INPUT_SIZE], output[EG_OUTPUT_SIZE];
    int8_t *arena = malloc(EG_ARENA_SIZE > 0 ? EG_ARENA_SIZE : 1);
    long count = 0;

    if (argc != 3 || arena == NULL) {
        return 2;
    }
    in = fopen(argv[1], "rb");
    out = fopen(argv[2], "wb");
    if (in == NULL || out == NULL) {
        return 2;
    }
    while (fread(input, 1, sizeof input, in) == sizeof input) {
        if (EG_INVOKE(input, output, arena) != 0) {
            return 3;
        }
        fwrite(output, 1, sizeof output, out);
        count++;
    }
    fclose(in);
    fclose(out);
    free(arena);
    printf("%ld\n", count);
    return 0;
}
