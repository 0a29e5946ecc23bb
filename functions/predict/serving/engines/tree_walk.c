/* The tree engine's walk and sums in C: serving/engines/native.py says why and how it is built.

   It computes what serving/engines/tree_engine.py's numpy walk computes, for the same arrays
   (its _Layout): each row's leaf in each tree by the same comparisons, and the leaf values added
   to the row's scores one tree after the other in tree order, in the sums' own type (float adds
   in float, double in double: C evaluates them so on x86-64 and arm64, FLT_EVAL_METHOD 0; no
   fast-math, no contraction). No other arithmetic: the link runs in numpy afterwards.

   Freestanding: no libc call (built with -nostdlib), so the library needs nothing of the system
   it runs on but the architecture. */

#include <stdint.h>

enum { MISSING_NAN = 0, MISSING_ZERO = 1, MISSING_NONE = 2 };
enum { COMPARISON_LESS = 1 };
/* LightGBM's kZeroThreshold, the float literal 1e-35f. */
#define ZERO_THRESHOLD ((double)1e-35f)
/* A category code is a value truncated to an integer from 0 to int32's largest. */
#define CODE_BOUND 2147483648.0

/* One record a node or leaf, as numpy lays out _Layout.nodes (16 bytes). A leaf's threshold is
   NaN and its feature field holds its leaf number. */
typedef struct {
    double threshold;
    int32_t feature;
    int32_t first_child;
} node64_t;

typedef struct {
    float threshold;
    int32_t feature;
    int32_t first_child;
    int32_t padding;
} node32_t;

/* The ensemble, as native.py's Ensemble structure fills it. missing and category are NULL when
   no node has a missing rule but NaN's, or no categorical split. */
typedef struct {
    const void *nodes;
    const int64_t *roots;
    int64_t n_trees;
    const uint8_t *default_right;
    const uint8_t *missing;
    const int32_t *category;
    const uint32_t *bitsets;
    const int32_t *category_offsets;
    int32_t flags;
    const void *leaf_values;
    int64_t width;
    const int64_t *tree_output;
    const int64_t *depth;
} ensemble_t;

/* Rows walked through every tree before the next ones: their features and scores stay in cache
   while a tree's nodes are read. */
#ifndef ROWS_PER_BLOCK
#define ROWS_PER_BLOCK 16384
#endif

static int in_bitset(const ensemble_t *e, int32_t which, int64_t code) {
    int64_t start = e->category_offsets[which];
    int64_t words = e->category_offsets[which + 1] - start;
    int64_t word = code >> 5;
    return word < words && ((e->bitsets[start + word] >> (code & 31)) & 1u);
}

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Whether node n sends value v right, with missing values and categories as trees.py says. */
ALWAYS_INLINE int general_goes_right(const ensemble_t *e, int64_t n, double threshold, double v,
                                     const int less) {
    int kind = e->missing ? e->missing[n] : MISSING_NAN;
    int nan = v != v;
    if (nan && kind != MISSING_NAN) {
        v = 0.0;
        nan = 0;
    }
    int right = less ? !(v < threshold) : !(v <= threshold);
    if (nan || (kind == MISSING_ZERO && (v < 0 ? -v : v) <= ZERO_THRESHOLD)) {
        right = e->default_right[n];
    }
    if (e->category && e->category[n] >= 0) {
        int in_range = v > -1.0 && v < CODE_BOUND;
        /* Out of range (NaN too) is missing. Under the "known" rule the value is a code already
           (its position among the known categories, or NaN). */
        right = in_range ? !in_bitset(e, e->category[n], (int64_t)v) : e->default_right[n];
    }
    return right;
}

/* A tree walks GROUP rows at once, a level of each in turn: their walks are independent, so the
   CPU overlaps their reads of nodes instead of waiting on each (a walk is a chain of dependent
   loads). A row that reaches its leaf adds the leaf's values to its scores and hands its slot to
   the next row, so the walks of a deep, unbalanced tree do not wait for the deepest one. A leaf's
   threshold is NaN. Values of a float32 model are compared as floats (widened to double only in
   the general step: exact). The walk is written once and specialised by the compiler for the
   plain step (numbers, NaN the only missing value) and the general one, with each comparison. */
#ifndef GROUP
#define GROUP 32
#endif
/* Trees at most this deep walk every row the tree's depth in steps without a branch (a leaf
   leads back to itself), FIXED_GROUP rows at once (few enough for registers: measured faster than
   more); deeper ones, often unbalanced, hand a finished row's slot to the next. */
#ifndef FIXED_GROUP
#define FIXED_GROUP 8
#endif
#ifndef FIXED_DEPTH
#define FIXED_DEPTH 8
#endif

/* Whether node N sends value V right: the general step, or the plain one (numbers, NaN to its
   default side). Written once for both walks below. */
#define GOES_RIGHT(N, THRESHOLD, V)                                                                     \
    (general ? general_goes_right(e, (N), (double)(THRESHOLD), (double)(V), less)                       \
             : ((V) != (V) ? default_right[(N)] : (less ? (V) >= (THRESHOLD) : (V) > (THRESHOLD))))

/* COUNT rows (slots step_at, row) walk the tree's depth in steps without a branch (a leaf, whose
   threshold is NaN, stays). */
#define FIXED_STEPS(NODE, IN, COUNT)                                                                    \
    for (int64_t level = 0; level < e->depth[t]; level++) {                                             \
        for (int64_t i = 0; i < (COUNT); i++) {                                                         \
            const NODE *node = nodes + step_at[i];                                                      \
            const IN threshold = node->threshold;                                                       \
            const int leaf = threshold != threshold;                                                    \
            const IN v = row[i][leaf ? 0 : node->feature];                                              \
            step_at[i] = node->first_child + (!leaf && GOES_RIGHT(step_at[i], threshold, v));           \
        }                                                                                               \
    }

#define DEFINE_SCORE(NAME, NODE, IN, SUM)                                                               \
    ALWAYS_INLINE void NAME##_block(const ensemble_t *e, const IN *restrict x, int64_t first,           \
                                    int64_t last, int64_t n_features, SUM *restrict total,              \
                                    int64_t row_stride, int64_t output_stride, const int general,       \
                                    const int less) {                                                   \
        const NODE *restrict nodes = (const NODE *)e->nodes;                                            \
        const SUM *restrict leaf_values = (const SUM *)e->leaf_values;                                  \
        const uint8_t *restrict default_right = e->default_right;                                       \
        const int64_t width = e->width, n_trees = e->n_trees;                                           \
        for (int64_t t = 0; t < n_trees; t++) {                                                         \
            const int64_t root = e->roots[t];                                                           \
            SUM *restrict output = total + e->tree_output[t] * output_stride;                           \
            int64_t at[GROUP], row_of[GROUP];                                                           \
            if (e->depth[t] <= FIXED_DEPTH) {                                                           \
                for (int64_t r0 = first; r0 < last; r0 += FIXED_GROUP) {                                \
                    const int64_t g = last - r0 < FIXED_GROUP ? last - r0 : FIXED_GROUP;                \
                    int64_t step_at[FIXED_GROUP];                                                       \
                    const IN *row[FIXED_GROUP];                                                         \
                    for (int64_t i = 0; i < g; i++) {                                                   \
                        step_at[i] = root;                                                              \
                        row[i] = x + (r0 + i) * n_features;                                             \
                    }                                                                                   \
                    /* A full group's count is a constant: its slots stay in registers. */              \
                    if (g == FIXED_GROUP) {                                                             \
                        FIXED_STEPS(NODE, IN, FIXED_GROUP)                                              \
                    } else {                                                                            \
                        FIXED_STEPS(NODE, IN, g)                                                        \
                    }                                                                                   \
                    for (int64_t i = 0; i < g; i++) {                                                   \
                        const SUM *value = leaf_values + (int64_t)nodes[step_at[i]].feature * width;    \
                        SUM *score = output + (r0 + i) * row_stride;                                    \
                        for (int64_t k = 0; k < width; k++) score[k * output_stride] += value[k];       \
                    }                                                                                   \
                }                                                                                       \
                continue;                                                                               \
            }                                                                                           \
            /* Never more slots than rows: a single row does not look at GROUP - 1 empty slots. */      \
            const int64_t slots = last - first < GROUP ? last - first : GROUP;                          \
            int64_t next = first, walking = 0;                                                          \
            for (int64_t i = 0; i < slots; i++) {                                                       \
                row_of[i] = next < last ? next++ : -1;                                                  \
                at[i] = root;                                                                           \
                walking += row_of[i] >= 0;                                                              \
            }                                                                                           \
            while (walking) {                                                                           \
                for (int64_t i = 0; i < slots; i++) {                                                   \
                    const int64_t r = row_of[i];                                                        \
                    if (r < 0) continue;                                                                \
                    const NODE *node = nodes + at[i];                                                   \
                    const IN threshold = node->threshold;                                               \
                    if (threshold != threshold) {                                                       \
                        const SUM *value = leaf_values + (int64_t)node->feature * width;                \
                        SUM *score = output + r * row_stride;                                           \
                        for (int64_t k = 0; k < width; k++) score[k * output_stride] += value[k];       \
                        at[i] = root;                                                                   \
                        row_of[i] = next < last ? next++ : -1;                                          \
                        walking -= row_of[i] < 0;                                                       \
                        continue;                                                                       \
                    }                                                                                   \
                    const IN v = x[r * n_features + node->feature];                                     \
                    at[i] = node->first_child + GOES_RIGHT(at[i], threshold, v);                        \
                }                                                                                       \
            }                                                                                           \
        }                                                                                               \
    }                                                                                                   \
    __attribute__((visibility("default"))) void NAME(const ensemble_t *e, const IN *x, int64_t n_rows,  \
                                                     int64_t n_features, SUM *total, int64_t row_stride, \
                                                     int64_t output_stride) {                           \
        int general = e->missing || e->category, less = e->flags & COMPARISON_LESS;                     \
        for (int64_t first = 0; first < n_rows; first += ROWS_PER_BLOCK) {                              \
            int64_t last = first + ROWS_PER_BLOCK < n_rows ? first + ROWS_PER_BLOCK : n_rows;           \
            if (general && less) {                                                                      \
                NAME##_block(e, x, first, last, n_features, total, row_stride, output_stride, 1, 1);    \
            } else if (general) {                                                                       \
                NAME##_block(e, x, first, last, n_features, total, row_stride, output_stride, 1, 0);    \
            } else if (less) {                                                                          \
                NAME##_block(e, x, first, last, n_features, total, row_stride, output_stride, 0, 1);    \
            } else {                                                                                    \
                NAME##_block(e, x, first, last, n_features, total, row_stride, output_stride, 0, 0);    \
            }                                                                                           \
        }                                                                                               \
    }

DEFINE_SCORE(score_f32_f32, node32_t, float, float)
DEFINE_SCORE(score_f32_f64, node32_t, float, double)
DEFINE_SCORE(score_f64_f32, node64_t, double, float)
DEFINE_SCORE(score_f64_f64, node64_t, double, double)
