/* edgekit's guard kernel: the clean-path checks of one sample in one C call.

   check_plan.OODPlan is the reference (numpy); this file computes the same numbers in one pass over
   the input instead of three numpy passes plus ~10 small numpy calls, which is what the guard costs on
   a device (docs/guard-cost.md). native.py compiles it once per machine with the system C compiler
   and loads it with ctypes.PyDLL (the GIL stays held: the functions below call the buffer API).
   No Python.h is needed (devices rarely have python3-dev): the few stable-ABI declarations are below.

   Python calls the two checks as builtins (METH_FASTCALL functions made at the end of this file), not
   through ctypes' call: 0.07 against 0.30 us hot, and +0.55 against +1.55 us right after an ONNX Runtime
   run, whose large code path leaves ctypes' argument handling out of the CPU caches (docs/guard-cost.md).

   Return values: a score >= 0 for a clean sample; -1 when the sample leaves the bounds or holds a
   NaN / Inf (the caller runs its exact checks); -2 when the object is not a C-contiguous float32
   buffer of the planned size (the caller's general path). */

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

typedef ssize_t Py_ssize_t;
typedef struct {  /* the stable ABI's Py_buffer */
    void *buf;
    void *obj;
    Py_ssize_t len;
    Py_ssize_t itemsize;
    int readonly;
    int ndim;
    char *format;
    Py_ssize_t *shape;
    Py_ssize_t *strides;
    Py_ssize_t *suboffsets;
    void *internal;
} Py_buffer;
extern int PyObject_GetBuffer(void *obj, Py_buffer *view, int flags);
extern void PyBuffer_Release(Py_buffer *view);
extern void PyErr_Clear(void);
typedef void PyObject;
typedef struct {  /* the stable ABI's PyMethodDef */
    const char *ml_name;
    void *ml_meth;
    int ml_flags;
    const char *ml_doc;
} PyMethodDef;
#define METH_FASTCALL 0x0080 /* stable ABI from Python 3.10: (self, const args[], nargs) */
extern PyObject *PyCFunction_NewEx(PyMethodDef *def, PyObject *self, PyObject *module);
extern PyObject *PyFloat_FromDouble(double v);
extern PyObject *PyTuple_GetItem(PyObject *tuple, Py_ssize_t i);
extern void *PyLong_AsVoidPtr(PyObject *o);
/* The scans below may reorder their sums and take min / max without NaN rules (fast-math) so the
   compiler vectorizes them; every NaN / Inf check is made outside them, under IEEE rules, on what they
   return (a NaN or Inf in the input always reaches a sum). GCC only: elsewhere they are plain C. */
#if defined(__GNUC__) && !defined(__clang__)
#define SCAN __attribute__((optimize("fast-math")))
#else
#define SCAN
#endif
#define BUF_FLAGS (0x0004 | 0x0008 | 0x0010 | 0x0020) /* PyBUF_FORMAT | PyBUF_C_CONTIGUOUS */

/* One input's plan, filled once at load by check_plan.NativePlan (the ctypes mirror must match). */
typedef struct {
    int64_t size;     /* values in one sample */
    int32_t mode;     /* 0: bounds only, 1: OOD on the values as they are, 2: OOD on pooled rows */
    int32_t h, w, c, k0, k1, f; /* sample (h, w, c), pool (k0, k1), features f */
    int32_t rough, colour, reach;
    float lo_bound, hi_bound;
    double g_mean[3], g_inv[3], log_eps, cell_const, inv_cell, inv_glob, rough_scale;
    double reach_p[4], colour_p[2];
    const float *w6;  /* (6, f): the sketch^2 then the sketch weights of the cell part, mean, mean square */
    float *rows;      /* scratch: (h / k0, w * c) row sums */
    double *lin;      /* scratch: f sketch values */
    double lo, hi;    /* out: the sample's min and max */
} plan_t;

/* The plan's size and one late field's offset, so native.py can check its ctypes mirror at load. */
int64_t edgekit_layout(void) { return (int64_t)sizeof(plan_t) * 65536 + (int64_t)offsetof(plan_t, lo); }

static int float_view(void *obj, Py_buffer *v, int64_t size) {
    if (PyObject_GetBuffer(obj, v, BUF_FLAGS) != 0) {
        PyErr_Clear();
        return 0;
    }
    if (v->itemsize != 4 || v->format == NULL || strcmp(v->format, "f") != 0 || (size >= 0 && v->len != 4 * size)) {
        PyBuffer_Release(v);
        return 0;
    }
    return 1;
}

/* min, max and the sum of n floats, one pass; 32 lanes: the compiler keeps them in vector registers,
   several independent ones, so the loop is not bound by one add's latency (the sum catches a NaN). */
#define LANES 32
SCAN static void min_max_sum(const float *x, int64_t n, float *lo, float *hi, double *sum) {
    float mn[LANES], mx[LANES], s[LANES];
    int64_t i = 0;
    for (int k = 0; k < LANES; k++) { mn[k] = INFINITY; mx[k] = -INFINITY; s[k] = 0.0f; }
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) {
            float v = x[i + k];
            mn[k] = v < mn[k] ? v : mn[k];
            mx[k] = v > mx[k] ? v : mx[k];
            s[k] += v;
        }
    double total = 0.0;
    float a = INFINITY, b = -INFINITY;
    for (int k = 0; k < LANES; k++) {
        a = mn[k] < a ? mn[k] : a;
        b = mx[k] > b ? mx[k] : b;
        total += s[k];
    }
    for (; i < n; i++) {
        float v = x[i];
        a = v < a ? v : a;
        b = v > b ? v : b;
        total += v;
    }
    *lo = a; *hi = b; *sum = total;
}

/* rows[r][j] = sum over the k0 image rows of cell row r, with the min and max of every value read;
   a NaN or Inf anywhere makes some row sum non-finite, which score() checks. Columns go in chunks of
   CH so each chunk's sums stay in registers over the k0 rows (1.5x faster here than row after row
   through memory); the min and max stay per lane over the whole input, reduced once at the end (a
   reduction per chunk had cost a third of the pass). */
#define CH 32
SCAN static void pool_rows(const float *x, const plan_t *p, float *lo, float *hi) {
    const int64_t wc = (int64_t)p->w * p->c, pr = p->h / p->k0, k0 = p->k0;
    float a = INFINITY, b = -INFINITY, mn[CH], mx[CH];
    for (int k = 0; k < CH; k++) { mn[k] = INFINITY; mx[k] = -INFINITY; }
    for (int64_t r = 0; r < pr; r++) {
        float *row = p->rows + r * wc;
        const float *base = x + r * k0 * wc;
        int64_t j0 = 0;
        for (; j0 + CH <= wc; j0 += CH) {
            float acc[CH];
            for (int k = 0; k < CH; k++) {
                float v = base[j0 + k];
                acc[k] = v;
                mn[k] = v < mn[k] ? v : mn[k];
                mx[k] = v > mx[k] ? v : mx[k];
            }
            for (int64_t t = 1; t < k0; t++) {
                const float *src = base + t * wc + j0;
                for (int k = 0; k < CH; k++) {
                    float v = src[k];
                    acc[k] += v;
                    mn[k] = v < mn[k] ? v : mn[k];
                    mx[k] = v > mx[k] ? v : mx[k];
                }
            }
            for (int k = 0; k < CH; k++) row[j0 + k] = acc[k];
        }
        for (; j0 < wc; j0++) {
            float s = 0;
            for (int64_t t = 0; t < k0; t++) {
                float v = base[t * wc + j0];
                s += v;
                a = v < a ? v : a;
                b = v > b ? v : b;
            }
            row[j0] = s;
        }
    }
    for (int k = 0; k < CH; k++) {
        a = mn[k] < a ? mn[k] : a;
        b = mx[k] > b ? mx[k] : b;
    }
    *lo = a; *hi = b;
}

/* The sketch (each cell's mean per channel) from the row sums into p->lin; returns the roughness. */
SCAN static double pool_cells(const plan_t *p) {
    const int64_t c = p->c, k1 = p->k1, wc = (int64_t)p->w * c, pr = p->h / p->k0, pc = p->w / k1;
    const double inv = 1.0 / ((double)p->k0 * (double)k1);
    double rough = 0.0;
    for (int64_t r = 0; r < pr; r++) {
        const float *row = p->rows + r * wc;
        if (c == 3 || c == 1) {  /* images: each cell's k1 * c values are contiguous, summed in registers */
            for (int64_t q = 0; q < pc; q++) {
                const float *blk = row + q * k1 * c;
                double *out = p->lin + (r * pc + q) * c;
                if (c == 3) {
                    float s0 = 0, s1 = 0, s2 = 0;
                    for (int64_t t = 0; t < k1; t++) {
                        s0 += blk[3 * t];
                        s1 += blk[3 * t + 1];
                        s2 += blk[3 * t + 2];
                    }
                    out[0] = s0 * inv; out[1] = s1 * inv; out[2] = s2 * inv;
                } else {
                    float s0 = 0;
                    for (int64_t t = 0; t < k1; t++) s0 += blk[t];
                    out[0] = s0 * inv;
                }
            }
        } else {
            for (int64_t q = 0; q < pc; q++)
                for (int64_t ch = 0; ch < c; ch++) {
                    double s = 0;
                    for (int64_t t = 0; t < k1; t++) s += row[(q * k1 + t) * c + ch];
                    p->lin[(r * pc + q) * c + ch] = s * inv;
                }
        }
        if (p->rough) {
            float ss = 0;  /* per row in float, like numpy's float32 dot; the rows in double */
            for (int64_t j = c; j < wc; j++) {
                float d = row[j] - row[j - c];
                ss += d * d;
            }
            rough += ss;
        }
    }
    return sqrt(rough * p->rough_scale);
}

/* The weighted sums behind the cell, mean and mean-square features (vectorized: a NaN or Inf still
   reaches the sums, which score() checks under IEEE rules). */
SCAN static void weighted(const plan_t *p, double out[3]) {
    const int f = p->f;
    const float *w = p->w6;  /* one row per weight: unit-stride loads */
    double c2 = 0, m = 0, m2 = 0;
    for (int i = 0; i < f; i++) {
        double v = p->lin[i], q = v * v;
        c2 += q * w[i] + v * w[3 * f + i];
        m += q * w[f + i] + v * w[4 * f + i];
        m2 += q * w[2 * f + i] + v * w[5 * f + i];
    }
    out[0] = c2; out[1] = m; out[2] = m2;
}

/* The mean over cells of the spread of a cell's c channel means (the colour feature's numerator). */
SCAN static double colour_spread(const plan_t *p) {
    const int c = p->c, cells = p->f / p->c;
    double spread = 0;
    for (int i = 0; i < cells; i++) {
        double e2 = 0, mean = 0;
        for (int k = 0; k < c; k++) {
            double v = p->lin[i * c + k];
            e2 += v * v;
            mean += v;
        }
        e2 /= c;
        mean /= c;
        spread += sqrt(fmax(e2 - mean * mean, 0.0));
    }
    return spread / cells;
}

/* The OOD score from the sketch in p->lin (calibration_stats.OODScorer has the maths). */
static double score(const plan_t *p, double rough) {
    double sums[3];
    weighted(p, sums);
    const double c2 = sums[0], m = sums[1], m2 = sums[2];
    if (!isfinite(c2 + m + m2 + rough)) return -1.0; /* a NaN or Inf in the input reaches here */
    const double eps = p->log_eps;
    const double std = sqrt(fmax(m2 - m * m, 0.0));
    double glob = fmax(fabs(m - p->g_mean[0]) * p->g_inv[0], fabs(log(std + eps) - p->g_mean[1]) * p->g_inv[1]);
    if (p->rough) glob = fmax(glob, (rough / (std + eps) - p->g_mean[2]) * p->g_inv[2]);
    double s = fmax(sqrt(fmax(c2 + p->cell_const, 0.0)) * p->inv_cell, glob * p->inv_glob);
    if (p->reach) {
        s = fmax(s, (p->lo - p->reach_p[0]) * p->reach_p[1]);
        s = fmax(s, (p->reach_p[2] - p->hi) * p->reach_p[3]);
    }
    if (p->colour) {
        const double colour = log(colour_spread(p) + eps) - log(std + eps);
        s = fmax(s, fabs(colour - p->colour_p[0]) * p->colour_p[1]);
    }
    return s;
}

/* The clean-path check of one sample: see the top of the file for the return values. */
double edgekit_check(void *obj, plan_t *p) {
    Py_buffer v;
    if (!float_view(obj, &v, p->size)) return -2.0;
    const float *x = (const float *)v.buf;
    float lo, hi;
    double rough = 0.0;
    int finite = 1;  /* mode 2: its row sums reach score(), which checks them */
    if (p->mode == 2) {
        pool_rows(x, p, &lo, &hi);
    } else {
        double sum;
        min_max_sum(x, p->size, &lo, &hi, &sum);
        finite = isfinite(sum);
    }
    p->lo = lo;
    p->hi = hi;
    if (!finite || !(lo >= p->lo_bound && hi <= p->hi_bound)) {
        PyBuffer_Release(&v);
        return -1.0;
    }
    if (p->mode == 1) {
        for (int i = 0; i < p->f; i++) p->lin[i] = x[i];
    } else if (p->mode == 2) {
        rough = pool_cells(p);
    }
    PyBuffer_Release(&v);
    return p->mode == 0 ? 0.0 : score(p, rough);
}

SCAN static double sum_f64(const float *x, int64_t n) {
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) total += x[i];
    return total;
}

/* The sum of a float32 buffer's values in double (never overflows: a float32 is at most ~3.4e38), so
   the sum is finite exactly when every value is; NaN when the object is not a contiguous float32
   buffer (the caller then runs its exact scan). */
double edgekit_sum(void *obj) {
    Py_buffer v;
    if (!float_view(obj, &v, -1)) return NAN;
    const double total = sum_f64((const float *)v.buf, v.len / 4);
    PyBuffer_Release(&v);
    return total;
}

/* The builtins. check's ``self`` is (the plan's address, what owns the plan's memory): the function keeps
   that memory alive for as long as anyone holds it. Another number of arguments is "not for me". */
static PyObject *check_builtin(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    plan_t *p = (plan_t *)PyLong_AsVoidPtr(PyTuple_GetItem(self, 0));
    return PyFloat_FromDouble(n == 1 ? edgekit_check(args[0], p) : -2.0);
}

static PyObject *sum_builtin(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    (void)self;
    return PyFloat_FromDouble(n == 1 ? edgekit_sum(args[0]) : NAN);
}

static PyMethodDef builtins[] = {
    {"edgekit_check", (void *)check_builtin, METH_FASTCALL, "check(sample) -> score, -1 or -2 (guard_kernel.c)"},
    {"edgekit_sum", (void *)sum_builtin, METH_FASTCALL, "sum(float32 array) -> float64 sum, NaN if not one"},
};

/* A new builtin: which 0 is check bound to ``self`` (see above), 1 is sum. */
PyObject *edgekit_builtin(int which, PyObject *self) {
    return PyCFunction_NewEx(&builtins[which != 0], which == 0 ? self : 0, 0);
}
