/* tfu_view_exec.h - a second executor, written only against the public
   plan view (>>seam in tensorfuse.h), the public tensor struct and the
   public type helpers. Plain loops, one instruction at a time over the
   group's whole iteration space, like miniaudio's null backend: slow on
   purpose, nothing clever, so that whatever it needs and the view does not
   say shows up as a guess in this file.

     int tv_run(const tfu_plan_view *v, void *arena);
         runs every group of the plan, stage by stage. arena: v->arena_bytes
         of caller memory, 64-byte aligned; tv_run poisons it first. Leaves
         are read (and written by copies) at tensors[i]->data; every other
         address is computed here: values at arena + offset[i], views and
         copies at their root's address + view_offs with their own nb. The
         data pointer of a computed tensor (the CPU plan's memory) is never
         read. Returns the number of violations of the view's contract seen
         while running (0: none); tv_last says what they were.
     void *tv_addr(const tfu_plan_view *v, void *arena, int i);
         where tensor i's element (0,0,0,0) lives for this executor (NULL
         for a value that has no memory).

   Arithmetic follows the reference executor: every instruction computes in
   double and rounds its result to f32 (stored or not), copies into F16 or
   BF16 round once more on store, so results match tfu_graph_compute_ref.

   Checked while running (each a violation):
   - the program: instruction sources are earlier instructions or operands
     of the group; every computed tensor is one instruction of one group;
     ops fit their group's kind; shapes fit the iteration space; what has
     memory is stored and what is stored has memory;
   - memory: every address lies inside its value's arena bytes or its
     leaf; an operand is read only after the stage that stored it, never
     from poison, and the bytes still hold the value that was stored there
     (no reuse while live); reads and writes fall inside the value's
     lifetime [life_first, life_last];
   - ranges: every byte touched in a stage lies inside a range listed for
     that stage (same root, same direction);
   - stages: no group writes a byte another group of its stage reads or
     writes; inside a group no byte is written twice, nor written by one
     work item after another read it (work item: an element of an
     element-wise group, a row of a row or other group, an output element
     of a matrix-product epilogue; a product reads for every item).
   Include after tensorfuse.h and tfu_test.h. */
#ifndef TFU_VIEW_EXEC_H
#define TFU_VIEW_EXEC_H
#include <stdarg.h>

#define TV_N_MSG 6

typedef struct tv_report {
    int  n_fail;                    /* violations in the last run          */
    char msg[TV_N_MSG][256];        /* the first of them                   */
    long n_groups, n_instrs, n_loads, n_stores, n_ranges_checked;
    long n_inplace;                 /* bytes a work item read, then wrote (in place) */
    long n_offsets_unaligned;       /* values whose arena offset is not a multiple of 64 */
} tv_report;

TT_FN tv_report tv_last;

/* per byte of a memory region: who wrote it last and who read it in the
   current stage (-1: nobody; -2: several) */
typedef struct tv_shadow {
    size_t   size;
    int32_t *w_group, *w_instr, *w_unit;
    int32_t *r_stage, *r_group, *r_unit;
} tv_shadow;

/* a tensor's bytes as this executor addresses them, in one group */
typedef struct tv_ref {
    const tfu_tensor *t;
    int32_t tensor, root;       /* tensors[] indices                          */
    int32_t range_root;         /* as in tfu_pv_range: the leaf, or -1: arena */
    unsigned char *region;      /* the leaf's data or the arena               */
    uint64_t first;             /* element (0,0,0,0), from the region's start */
    uint64_t lim_lo, lim_hi;    /* bytes it may touch: its value, or the leaf */
    tv_shadow *sh;              /* NULL: a leaf no copy writes                */
    uint64_t lo, hi;            /* bytes touched in this group (hi 0: none)   */
    int ok, reported;
} tv_ref;

typedef struct tv_state {
    const tfu_plan_view *v;
    unsigned char *arena;
    tv_shadow arena_sh;
    tv_shadow *leaf_sh;         /* per tensor; size 0 unless a copy writes the leaf */
    int32_t *computed_by;       /* per tensor: the instruction computing it, or -1 */
    int group, stage, instr, unit;
    const tfu_pv_group *G;
    tv_ref *opnd;               /* the group's operands                       */
    tv_ref *out;                /* per instruction of the group: its store    */
    float **buf;                /* per instruction: its f32 results           */
} tv_state;

#define TV_UNIT_ALL (-3)        /* a matrix product reads for every item */

TT_FN void tv_fail(tv_state *S, const char *fmt, ...) {
    va_list ap;
    char *m;
    int n;
    tv_last.n_fail++;
    if (tv_last.n_fail > TV_N_MSG) return;
    m = tv_last.msg[tv_last.n_fail - 1];
    n = snprintf(m, 256, "stage %d group %d instr %d: ", S->stage, S->group, S->instr);
    if (n < 0 || n >= 256) return;
    va_start(ap, fmt);
    vsnprintf(m + n, 256 - (size_t)n, fmt, ap);
    va_end(ap);
}

TT_FN int tv_is_leaf(const tfu_tensor *t) { return t->op == TFU_OP_NONE; }

TT_FN int tv_is_eltwise(tfu_op op) {
    switch (op) {
    case TFU_OP_CONT: case TFU_OP_CPY: case TFU_OP_ADD: case TFU_OP_SUB: case TFU_OP_MUL: case TFU_OP_DIV:
    case TFU_OP_SCALE: case TFU_OP_CLAMP: case TFU_OP_NEG: case TFU_OP_ABS: case TFU_OP_SQR: case TFU_OP_SQRT:
    case TFU_OP_EXP: case TFU_OP_LOG: case TFU_OP_SIN: case TFU_OP_COS: case TFU_OP_TANH: case TFU_OP_SIGMOID:
    case TFU_OP_RELU: case TFU_OP_GELU: case TFU_OP_GELU_ERF: case TFU_OP_SILU: case TFU_OP_GLU:
        return 1;
    default:
        return 0;
    }
}

TT_FN int tv_is_row(tfu_op op) { return op == TFU_OP_RMS_NORM || op == TFU_OP_NORM || op == TFU_OP_SOFT_MAX; }

TT_FN int tv_is_other(tfu_op op) {
    return op == TFU_OP_GET_ROWS || op == TFU_OP_ROPE || op == TFU_OP_CONCAT || op == TFU_OP_SUM_ROWS ||
           op == TFU_OP_MEAN || op == TFU_OP_ARGMAX || op == TFU_OP_SET_ROWS;
}

/* may an op of this kind stand in a group of that kind? */
TT_FN int tv_op_fits(tfu_group_kind kind, tfu_op op) {
    switch (kind) {
    case TFU_GROUP_ELTWISE: return tv_is_eltwise(op);
    case TFU_GROUP_ROW: return tv_is_eltwise(op) || tv_is_row(op);
    case TFU_GROUP_MATMUL: return tv_is_eltwise(op) || op == TFU_OP_MUL_MAT;
    case TFU_GROUP_OTHER: return tv_is_other(op);
    case TFU_GROUP_ATTENTION: return op == TFU_OP_MUL_MAT || op == TFU_OP_SOFT_MAX;
    default: return 0;
    }
}

/* --- memory ------------------------------------------------------------ */

TT_FN int tv_shadow_init(tv_shadow *sh, size_t size) {
    size_t i;
    memset(sh, 0, sizeof *sh);
    if (size == 0) return 1;
    sh->w_group = (int32_t *)malloc(size * sizeof(int32_t));
    sh->w_instr = (int32_t *)malloc(size * sizeof(int32_t));
    sh->w_unit = (int32_t *)malloc(size * sizeof(int32_t));
    sh->r_stage = (int32_t *)malloc(size * sizeof(int32_t));
    sh->r_group = (int32_t *)malloc(size * sizeof(int32_t));
    sh->r_unit = (int32_t *)malloc(size * sizeof(int32_t));
    if (!sh->w_group || !sh->w_instr || !sh->w_unit || !sh->r_stage || !sh->r_group || !sh->r_unit) return 0;
    sh->size = size;
    for (i = 0; i < size; i++) {
        sh->w_group[i] = -1;
        sh->w_instr[i] = -1;
        sh->w_unit[i] = -1;
        sh->r_stage[i] = -1;
        sh->r_group[i] = -1;
        sh->r_unit[i] = -1;
    }
    return 1;
}

TT_FN void tv_shadow_free(tv_shadow *sh) {
    free(sh->w_group);
    free(sh->w_instr);
    free(sh->w_unit);
    free(sh->r_stage);
    free(sh->r_group);
    free(sh->r_unit);
    memset(sh, 0, sizeof *sh);
}

/* the offset of tensor q inside its root: 0 for the root itself, else its
   view_offs (views and copies) */
TT_FN uint64_t tv_inner(const tfu_plan_view *v, int q) {
    return v->root[q] == q ? 0 : (uint64_t)v->tensors[q]->view_offs;
}

TT_FN void *tv_addr(const tfu_plan_view *v, void *arena, int q) {
    int r = v->root[q];
    const tfu_tensor *root = v->tensors[r];
    if (tv_is_leaf(root)) return (unsigned char *)root->data + tv_inner(v, q);
    if (v->offset[r] < 0) return NULL;
    return (unsigned char *)arena + v->offset[r] + tv_inner(v, q);
}

/* locates tensor q for reading (write 0) or storing (write 1) */
TT_FN int tv_locate(tv_state *S, int q, int write, tv_ref *r) {
    const tfu_plan_view *v = S->v;
    int root;
    memset(r, 0, sizeof *r);
    if (q < 0 || q >= v->n_tensors) {
        tv_fail(S, "tensor index %d outside [0, %d)", q, v->n_tensors);
        return 0;
    }
    root = v->root[q];
    r->t = v->tensors[q];
    r->tensor = q;
    r->root = root;
    if (root < 0 || root >= v->n_tensors) {
        tv_fail(S, "tensor %d: root %d outside [0, %d)", q, root, v->n_tensors);
        return 0;
    }
    if (v->tensors[root]->view_src || (root != q && !v->tensors[q]->view_src)) {
        tv_fail(S, "tensor %d (%s): root %d is not its memory root", q, tfu_op_name(r->t->op), root);
        return 0;
    }
    if (tv_is_leaf(v->tensors[root])) {
        if (!v->tensors[root]->data) {
            tv_fail(S, "tensor %d: leaf %d has no data", q, root);
            return 0;
        }
        r->range_root = root;
        r->region = (unsigned char *)v->tensors[root]->data;
        r->first = tv_inner(v, q);
        r->lim_lo = 0;
        r->lim_hi = tfu_nbytes(v->tensors[root]);
        r->sh = S->leaf_sh[root].size ? &S->leaf_sh[root] : NULL;
    } else {
        int64_t off = v->offset[root];
        if (off < 0) {
            tv_fail(S, "tensor %d (%s) %s through value %d (%s), which has no memory (offset -1)", q,
                    tfu_op_name(r->t->op), write ? "stored" : "read", root, tfu_op_name(v->tensors[root]->op));
            return 0;
        }
        if ((uint64_t)off + tfu_nbytes(v->tensors[root]) > v->arena_bytes) {
            tv_fail(S, "value %d at [%lld, +%zu) past the arena (%zu bytes)", root, (long long)off,
                    tfu_nbytes(v->tensors[root]), v->arena_bytes);
            return 0;
        }
        if (v->life_first[root] > S->stage || v->life_last[root] < S->stage) {
            tv_fail(S, "value %d (%s) %s in stage %d outside its lifetime [%d, %d]", root,
                    tfu_op_name(v->tensors[root]->op), write ? "stored" : "read", S->stage,
                    v->life_first[root], v->life_last[root]);
        }
        r->range_root = -1;
        r->region = S->arena;
        r->first = (uint64_t)off + tv_inner(v, q);
        r->lim_lo = (uint64_t)off;
        r->lim_hi = (uint64_t)off + tfu_nbytes(v->tensors[root]);
        r->sh = &S->arena_sh;
    }
    r->ok = 1;
    return 1;
}

/* the shadow bookkeeping of n bytes at off */
TT_FN void tv_touch(tv_state *S, tv_ref *r, uint64_t off, size_t n, int write) {
    tv_shadow *sh = r->sh;
    const tfu_pv_group *groups = S->v->groups;
    uint64_t b;
    if (r->hi == 0 || off < r->lo) r->lo = off;
    if (off + n > r->hi) r->hi = off + n;
    if (!sh) return;
    for (b = off; b < off + n; b++) {
        int32_t wg = sh->w_group[b];
        int same_stage_write = wg >= 0 && groups[wg].stage == S->stage;
        if (write) {
            if (same_stage_write && wg != S->group)
                tv_fail(S, "writes byte %llu of root %d that group %d of the same stage wrote", (unsigned long long)b,
                        r->range_root, wg);
            else if (same_stage_write && (sh->w_instr[b] != S->instr || sh->w_unit[b] != S->unit))
                tv_fail(S, "writes byte %llu of root %d twice in one group (instr %d item %d, then item %d)",
                        (unsigned long long)b, r->range_root, sh->w_instr[b], sh->w_unit[b], S->unit);
            if (sh->r_stage[b] == S->stage && sh->r_group[b] != S->group)
                tv_fail(S, "writes byte %llu of root %d that another group of the same stage reads", (unsigned long long)b,
                        r->range_root);
            else if (sh->r_stage[b] == S->stage && (sh->r_unit[b] != S->unit || S->unit == TV_UNIT_ALL))
                tv_fail(S, "item %d writes byte %llu of root %d that item %d of the same group read", S->unit,
                        (unsigned long long)b, r->range_root, sh->r_unit[b]);
            else if (sh->r_stage[b] == S->stage)
                tv_last.n_inplace++;
            sh->w_group[b] = S->group;
            sh->w_instr[b] = S->instr;
            sh->w_unit[b] = S->unit;
            continue;
        }
        if (r->range_root < 0 && wg < 0) {
            tv_fail(S, "reads arena byte %llu (tensor %d) that nothing stored: poison", (unsigned long long)b, r->tensor);
        } else if (r->range_root < 0 && S->v->instrs[sh->w_instr[b]].tensor != r->root) {
            tv_fail(S, "reads arena byte %llu of value %d, but tensor %d stored there last (reused while live)",
                    (unsigned long long)b, r->root, S->v->instrs[sh->w_instr[b]].tensor);
        }
        if (same_stage_write)
            tv_fail(S, "reads byte %llu of root %d stored in the same stage (group %d)", (unsigned long long)b,
                    r->range_root, wg);
        if (sh->r_stage[b] != S->stage) {
            sh->r_stage[b] = S->stage;
            sh->r_group[b] = S->group;
            sh->r_unit[b] = S->unit;
        } else if (sh->r_group[b] != S->group) {
            sh->r_group[b] = -2;
        } else if (sh->r_unit[b] != S->unit) {
            sh->r_unit[b] = -2;
        }
    }
}

/* byte offset of element (j0..j3) of r in its region; 0 and a violation
   when it falls outside the bytes r may touch */
TT_FN int tv_elem(tv_state *S, tv_ref *r, int64_t j0, int64_t j1, int64_t j2, int64_t j3, uint64_t *off) {
    const tfu_tensor *t = r->t;
    uint64_t o, es = tfu_type_size(t->type);
    if (!r->ok) return 0;
    if (j0 < 0 || j1 < 0 || j2 < 0 || j3 < 0 || j0 >= t->ne[0] || j1 >= t->ne[1] || j2 >= t->ne[2] || j3 >= t->ne[3]) {
        if (!r->reported) tv_fail(S, "tensor %d indexed at (%lld,%lld,%lld,%lld) outside its shape", r->tensor,
                                  (long long)j0, (long long)j1, (long long)j2, (long long)j3);
        r->reported = 1;
        return 0;
    }
    /* quantized types: element j0 lies in block j0 / block_size (nb[0] bytes a block) */
    o = r->first + (uint64_t)(j0 / tfu_type_block_size(t->type)) * t->nb[0] + (uint64_t)j1 * t->nb[1] + (uint64_t)j2 * t->nb[2] +
        (uint64_t)j3 * t->nb[3];
    if (o < r->lim_lo || o + es > r->lim_hi) {
        if (!r->reported) tv_fail(S, "tensor %d element at byte %llu outside [%llu, %llu)", r->tensor,
                                  (unsigned long long)o, (unsigned long long)r->lim_lo, (unsigned long long)r->lim_hi);
        r->reported = 1;
        return 0;
    }
    *off = o;
    return 1;
}

TT_FN double tv_load(tv_state *S, tv_ref *r, int64_t j0, int64_t j1, int64_t j2, int64_t j3) {
    uint64_t o;
    const unsigned char *p;
    uint16_t h;
    float f;
    int32_t i;
    if (!tv_elem(S, r, j0, j1, j2, j3, &o)) return NAN;
    tv_touch(S, r, o, tfu_type_size(r->t->type), 0);
    tv_last.n_loads++;
    p = r->region + o;
    switch (r->t->type) {
    case TFU_F32: memcpy(&f, p, 4); return f;
    case TFU_F16: memcpy(&h, p, 2); return tfu_f16_to_f32(h);
    case TFU_BF16: memcpy(&h, p, 2); return tfu_bf16_to_f32(h);
    case TFU_I32: memcpy(&i, p, 4); return (double)i;
    case TFU_Q8_0: case TFU_Q4_0: {   /* the whole block decoded, one of its values */
        float blk[64];
        int64_t bs = tfu_type_block_size(r->t->type);
        if (bs > 64 || tfu_dequantize_row(r->t->type, p, blk, bs) != TFU_OK) return NAN;
        return blk[j0 % bs];
    }
    default: return NAN;
    }
}

TT_FN void tv_store(tv_state *S, tv_ref *r, int64_t j0, int64_t j1, int64_t j2, int64_t j3, float x) {
    uint64_t o;
    unsigned char *p;
    uint16_t h;
    int32_t i;
    if (!tv_elem(S, r, j0, j1, j2, j3, &o)) return;
    tv_touch(S, r, o, tfu_type_size(r->t->type), 1);
    tv_last.n_stores++;
    p = r->region + o;
    switch (r->t->type) {
    case TFU_F32: memcpy(p, &x, 4); break;
    case TFU_F16: h = tfu_f32_to_f16(x); memcpy(p, &h, 2); break;
    case TFU_BF16: h = tfu_f32_to_bf16(x); memcpy(p, &h, 2); break;
    case TFU_I32: i = (int32_t)x; memcpy(p, &i, 4); break;
    default: break;
    }
}

/* --- arithmetic (the reference executor's) ------------------------------ */

TT_FN double tv_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
TT_FN double tv_gelu(double x) { return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }
TT_FN double tv_gelu_erf(double x) { return 0.5 * x * (1.0 + erf(x * 0.7071067811865476)); }

/* element-wise ops; x: the sources' values */
TT_FN double tv_eltwise_op(const tfu_tensor *t, const double *x) {
    const float *p = t->op_params_f;
    switch (t->op) {
    case TFU_OP_ADD: return x[0] + x[1];
    case TFU_OP_SUB: return x[0] - x[1];
    case TFU_OP_MUL: return x[0] * x[1];
    case TFU_OP_DIV: return x[0] / x[1];
    case TFU_OP_SCALE: return x[0] * p[0] + p[1];
    case TFU_OP_CLAMP: return x[0] < p[0] ? p[0] : x[0] > p[1] ? p[1] : x[0];
    case TFU_OP_NEG: return -x[0];
    case TFU_OP_ABS: return fabs(x[0]);
    case TFU_OP_SQR: return x[0] * x[0];
    case TFU_OP_SQRT: return sqrt(x[0]);
    case TFU_OP_EXP: return exp(x[0]);
    case TFU_OP_LOG: return log(x[0]);
    case TFU_OP_SIN: return sin(x[0]);
    case TFU_OP_COS: return cos(x[0]);
    case TFU_OP_TANH: return tanh(x[0]);
    case TFU_OP_SIGMOID: return tv_sigmoid(x[0]);
    case TFU_OP_RELU: return x[0] < 0 ? 0 : x[0];   /* NaN stays NaN */
    case TFU_OP_GELU: return tv_gelu(x[0]);
    case TFU_OP_GELU_ERF: return tv_gelu_erf(x[0]);
    case TFU_OP_SILU: return x[0] * tv_sigmoid(x[0]);
    case TFU_OP_CONT: case TFU_OP_CPY: return x[0];
    case TFU_OP_GLU:   /* sources: gate, value (the view resolved swapped and the halves) */
        switch (t->op_params_i[0]) {
        case TFU_GLU_REGLU: return (x[0] < 0 ? 0 : x[0]) * x[1];
        case TFU_GLU_GEGLU: return tv_gelu(x[0]) * x[1];
        case TFU_GLU_GEGLU_ERF: return tv_gelu_erf(x[0]) * x[1];
        default: return x[0] * tv_sigmoid(x[0]) * x[1];
        }
    default: return NAN;
    }
}

/* --- one group ----------------------------------------------------------- */

/* source s of instruction k at the group index (i0..i3), e its linear index:
   an earlier instruction's result, or an operand read from memory with
   broadcasting (index d modulo the operand's ne[d]) and col_off */
TT_FN double tv_src(tv_state *S, const tfu_pv_instr *I, int s, int64_t e, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
    int32_t r = I->src[s];
    tv_ref *x;
    int32_t col;
    if (r >= 0) return S->buf[r][e];
    x = &S->opnd[-1 - r];
    col = S->v->operands[S->G->first_operand + (-1 - r)].col_off;
    if (!x->ok) return NAN;
    return tv_load(S, x, i0 % x->t->ne[0] + col, i1 % x->t->ne[1], i2 % x->t->ne[2], i3 % x->t->ne[3]);
}

/* the work unit of element e: an element in element-wise and matmul
   groups, a row (of ne0 elements) in row groups */
TT_FN int tv_unit(const tv_state *S, int64_t e, int64_t ne0) {
    if (S->G->kind == TFU_GROUP_ELTWISE || S->G->kind == TFU_GROUP_MATMUL) return (int)e;
    return (int)(e / ne0);
}

/* an operand read by explicit index (products and other ops): source s
   must be an operand with col_off 0 */
TT_FN tv_ref *tv_operand_src(tv_state *S, const tfu_pv_instr *I, int s) {
    int32_t r = I->src[s];
    if (s >= I->n_src || r >= 0) {
        tv_fail(S, "source %d of %s is not an operand", s, tfu_op_name(S->v->tensors[I->tensor]->op));
        return NULL;
    }
    if (S->v->operands[S->G->first_operand + (-1 - r)].col_off != 0) {
        tv_fail(S, "operand %d of %s has col_off %d", -1 - r, tfu_op_name(S->v->tensors[I->tensor]->op),
                S->v->operands[S->G->first_operand + (-1 - r)].col_off);
        return NULL;
    }
    if (!S->opnd[-1 - r].ok) return NULL;
    return &S->opnd[-1 - r];
}

TT_FN void tv_run_eltwise(tv_state *S, const tfu_pv_instr *I, float *out) {
    const tfu_tensor *t = S->v->tensors[I->tensor];
    const int64_t *ne = S->G->ne;
    int64_t i0, i1, i2, i3, e = 0;
    double x[TFU_MAX_SRC];
    int s;
    for (i3 = 0; i3 < ne[3]; i3++)
    for (i2 = 0; i2 < ne[2]; i2++)
    for (i1 = 0; i1 < ne[1]; i1++)
    for (i0 = 0; i0 < ne[0]; i0++, e++) {
        S->unit = tv_unit(S, e, ne[0]);
        for (s = 0; s < I->n_src; s++) x[s] = tv_src(S, I, s, e, i0, i1, i2, i3);
        out[e] = (float)tv_eltwise_op(t, x);
    }
}

/* RMS_NORM, NORM, SOFT_MAX on whole rows of the instruction (ne0 = row;
   the group's iteration space but in an attention group) */
TT_FN void tv_run_row(tv_state *S, const tfu_pv_instr *I, float *out) {
    const tfu_tensor *t = S->v->tensors[I->tensor];
    const int64_t *ne = t->ne;
    int64_t i0, i1, i2, i3, row = 0, n = ne[0];
    double *x = (double *)malloc((size_t)n * sizeof(double));
    if (!x) {
        tv_fail(S, "no memory for a row");
        return;
    }
    for (i3 = 0; i3 < ne[3]; i3++)
    for (i2 = 0; i2 < ne[2]; i2++)
    for (i1 = 0; i1 < ne[1]; i1++, row++) {
        int64_t e0 = row * n;
        double s1 = 0, s2 = 0, mx = -INFINITY, mean = 0, scale;
        S->unit = (int)row;
        for (i0 = 0; i0 < n; i0++) {
            double a = tv_src(S, I, 0, e0 + i0, i0, i1, i2, i3);
            if (t->op == TFU_OP_SOFT_MAX) {
                a *= t->op_params_f[0];
                if (I->n_src > 1) a += tv_src(S, I, 1, e0 + i0, i0, i1, i2, i3);
            }
            x[i0] = a;
            if (a > mx) mx = a;
            s1 += a;
            s2 += a * a;
        }
        if (t->op == TFU_OP_SOFT_MAX) {
            double sum = 0;
            for (i0 = 0; i0 < n; i0++) sum += exp(x[i0] - mx);
            for (i0 = 0; i0 < n; i0++) out[e0 + i0] = (float)(exp(x[i0] - mx) / sum);
            continue;
        }
        if (t->op == TFU_OP_RMS_NORM) {
            scale = 1.0 / sqrt(s2 / (double)n + t->op_params_f[0]);
        } else {
            double var = 0;
            mean = s1 / (double)n;
            for (i0 = 0; i0 < n; i0++) var += (x[i0] - mean) * (x[i0] - mean);
            scale = 1.0 / sqrt(var / (double)n + t->op_params_f[0]);
        }
        for (i0 = 0; i0 < n; i0++) out[e0 + i0] = (float)((x[i0] - mean) * scale);
    }
    free(x);
}

/* out[i3][i2][i1][i0] = sum_k a[i3/r3][i2/r2][i0][k] * b[i3][i2][i1][k]
   (a: K x M weights, b: K x N; dims 2 and 3 of a broadcast over b's by
   division, as in ggml). b is an operand, or in an attention group the
   softmax instruction before (its buffer, ne0 fastest) */
TT_FN void tv_run_matmul(tv_state *S, const tfu_pv_instr *I, float *out) {
    const tfu_tensor *t = S->v->tensors[I->tensor];
    tv_ref *a = tv_operand_src(S, I, 0), *b = NULL;
    const float *bbuf = NULL;
    const int64_t *ne = t->ne;
    int64_t i0, i1, i2, i3, k, e = 0, r2, r3, K;
    if (S->G->kind == TFU_GROUP_ATTENTION && I->n_src == 2 && I->src[1] >= 0) bbuf = S->buf[I->src[1]];
    else b = tv_operand_src(S, I, 1);
    if (!a || (!b && !bbuf)) return;
    K = a->t->ne[0];
    r2 = ne[2] / a->t->ne[2];
    r3 = ne[3] / a->t->ne[3];
    S->unit = TV_UNIT_ALL;
    for (i3 = 0; i3 < ne[3]; i3++)
    for (i2 = 0; i2 < ne[2]; i2++)
    for (i1 = 0; i1 < ne[1]; i1++)
    for (i0 = 0; i0 < ne[0]; i0++, e++) {
        double s = 0;
        const float *brow = bbuf ? bbuf + ((i3 * ne[2] + i2) * ne[1] + i1) * K : NULL;
        for (k = 0; k < K; k++) s += tv_load(S, a, k, i0, i2 / r2, i3 / r3) * (brow ? (double)brow[k] : tv_load(S, b, k, i1, i2, i3));
        out[e] = (float)s;
    }
}

/* GET_ROWS, ROPE, CONCAT, SUM_ROWS, MEAN, ARGMAX: one op, as the reference */
TT_FN void tv_run_other(tv_state *S, const tfu_pv_instr *I, float *out) {
    const tfu_tensor *t = S->v->tensors[I->tensor];
    const int64_t *ne = t->ne;
    tv_ref *a = tv_operand_src(S, I, 0), *b = NULL;
    int64_t i0, i1, i2, i3, row = 0;
    if (t->op == TFU_OP_GET_ROWS || t->op == TFU_OP_ROPE || t->op == TFU_OP_CONCAT) b = tv_operand_src(S, I, 1);
    if (!a || (!b && (t->op == TFU_OP_GET_ROWS || t->op == TFU_OP_ROPE || t->op == TFU_OP_CONCAT))) return;
    for (i3 = 0; i3 < ne[3]; i3++)
    for (i2 = 0; i2 < ne[2]; i2++)
    for (i1 = 0; i1 < ne[1]; i1++, row++) {
        float *d = out + row * ne[0];
        S->unit = (int)row;
        if (t->op == TFU_OP_GET_ROWS) {
            /* idx element (i1, i2, i3) picks a row of a; computed indices are clamped */
            double ri = tv_load(S, b, i1, i2, i3, 0);
            int64_t r = ri == ri ? (int64_t)ri : 0;
            if (r < 0) r = 0;
            if (r >= a->t->ne[1]) r = a->t->ne[1] - 1;
            for (i0 = 0; i0 < ne[0]; i0++) d[i0] = (float)tv_load(S, a, i0, r, 0, 0);
        } else if (t->op == TFU_OP_ROPE) {
            int nd = t->op_params_i[0], neox = t->op_params_i[1] == TFU_ROPE_NEOX;
            double base = t->op_params_f[0], pos = tv_load(S, b, i2, 0, 0, 0);
            for (i0 = nd; i0 < ne[0]; i0++) d[i0] = (float)tv_load(S, a, i0, i1, i2, i3);
            for (i0 = 0; i0 < nd / 2; i0++) {
                double th = pos * pow(base, -2.0 * (double)i0 / (double)nd);
                double c = cos(th), s = sin(th);
                int64_t j0 = neox ? i0 : 2 * i0, j1 = neox ? i0 + nd / 2 : 2 * i0 + 1;
                double x0 = tv_load(S, a, j0, i1, i2, i3), x1 = tv_load(S, a, j1, i1, i2, i3);
                d[j0] = (float)(x0 * c - x1 * s);
                d[j1] = (float)(x0 * s + x1 * c);
            }
        } else if (t->op == TFU_OP_CONCAT) {
            int dim = t->op_params_i[0];
            for (i0 = 0; i0 < ne[0]; i0++) {
                int64_t ix[4];
                ix[0] = i0;
                ix[1] = i1;
                ix[2] = i2;
                ix[3] = i3;
                if (ix[dim] < a->t->ne[dim]) {
                    d[i0] = (float)tv_load(S, a, ix[0], ix[1], ix[2], ix[3]);
                } else {
                    ix[dim] -= a->t->ne[dim];
                    d[i0] = (float)tv_load(S, b, ix[0], ix[1], ix[2], ix[3]);
                }
            }
        } else {
            /* one value per row of a; ARGMAX: the first NaN, else the first largest */
            int64_t n = a->t->ne[0], best = 0, first_nan = -1;
            double s = 0, mx = -INFINITY;
            for (i0 = 0; i0 < n; i0++) {
                double x = tv_load(S, a, i0, i1, i2, i3);
                if (x != x && first_nan < 0) first_nan = i0;
                if (x > mx) {
                    mx = x;
                    best = i0;
                }
                s += x;
            }
            if (t->op == TFU_OP_ARGMAX) d[0] = (float)(first_nan >= 0 ? first_nan : best);
            else if (t->op == TFU_OP_MEAN) d[0] = (float)(s / (double)n);
            else d[0] = (float)s;
        }
    }
}

/* SET_ROWS: the group's iteration space is the rows' shape; row i1 of
   them (a work item) lands in row idx[i1, i2 % idx->ne1, i3 % idx->ne2]
   of the result's memory (the dst's bytes); computed indices are clamped */
TT_FN void tv_run_set_rows(tv_state *S, int k, const tfu_pv_instr *I) {
    tv_ref *a = tv_operand_src(S, I, 0), *b = tv_operand_src(S, I, 1), *o = &S->out[k];
    const int64_t *ne = S->G->ne;
    int64_t i0, i1, i2, i3, row = 0;
    if (!a || !b || !I->store || !tv_locate(S, I->tensor, 1, o)) return;
    for (i3 = 0; i3 < ne[3]; i3++)
    for (i2 = 0; i2 < ne[2]; i2++)
    for (i1 = 0; i1 < ne[1]; i1++, row++) {
        double ri = tv_load(S, b, i1, i2 % b->t->ne[1], i3 % b->t->ne[2], 0);
        int64_t r = ri == ri ? (int64_t)ri : 0;
        S->unit = (int)row;
        if (r < 0) r = 0;
        if (r >= o->t->ne[1]) r = o->t->ne[1] - 1;
        for (i0 = 0; i0 < ne[0]; i0++) tv_store(S, o, i0, r, i2, i3, (float)tv_load(S, a, i0, i1, i2, i3));
    }
}

/* writes instruction k's results to its memory, converting to its type */
TT_FN void tv_store_all(tv_state *S, int k, const float *vals) {
    tv_ref *r = &S->out[k];
    const int64_t *ne = r->t->ne;
    int64_t i0, i1, i2, i3, e = 0;
    for (i3 = 0; i3 < ne[3]; i3++)
    for (i2 = 0; i2 < ne[2]; i2++)
    for (i1 = 0; i1 < ne[1]; i1++)
    for (i0 = 0; i0 < ne[0]; i0++, e++) {
        S->unit = tv_unit(S, e, ne[0]);
        tv_store(S, r, i0, i1, i2, i3, vals[e]);
    }
}

/* every byte a reference touched lies inside one range of the stage */
TT_FN void tv_check_range(tv_state *S, const tv_ref *r, int write) {
    const tfu_plan_view *v = S->v;
    int q;
    if (!r->ok || r->hi == 0) return;
    tv_last.n_ranges_checked++;
    for (q = v->range_first[S->stage]; q < v->range_first[S->stage + 1]; q++) {
        const tfu_pv_range *R = &v->ranges[q];
        if (R->root == r->range_root && R->write == write && R->lo <= r->lo && r->hi <= R->hi) return;
    }
    tv_fail(S, "tensor %d %s bytes [%llu, %llu) of root %d: no range of stage %d covers them", r->tensor,
            write ? "writes" : "reads", (unsigned long long)r->lo, (unsigned long long)r->hi, r->range_root, S->stage);
}

/* an attention group: scores MUL_MAT(K, Q) from operands, SOFT_MAX of
   them (a mask operand, if any), the result MUL_MAT(V, P) with P
   instruction 1; scores and probabilities of one shape (n_kv x n_q x
   heads), the result's dims 1-3 the same */
TT_FN int tv_check_attention(tv_state *S, const tfu_pv_group *G) {
    const tfu_plan_view *v = S->v;
    const tfu_pv_instr *I = &v->instrs[G->first_instr];
    const tfu_tensor *sc = v->tensors[I[0].tensor], *pr = v->tensors[I[1].tensor], *o = v->tensors[I[2].tensor];
    int d;
    if (sc->op != TFU_OP_MUL_MAT || pr->op != TFU_OP_SOFT_MAX || o->op != TFU_OP_MUL_MAT || I[0].n_src != 2 || I[0].src[0] >= 0 ||
        I[0].src[1] >= 0 || I[1].src[0] != 0 || (I[1].n_src > 1 && I[1].src[1] >= 0) || I[2].n_src != 2 || I[2].src[0] >= 0 ||
        I[2].src[1] != 1 || I[0].store || I[1].store) {
        tv_fail(S, "an attention group that is not S = K Q, P = softmax(S), V P with S and P unstored");
        return 0;
    }
    for (d = 0; d < TFU_MAX_DIMS; d++)
        if (sc->ne[d] != pr->ne[d] || (d > 0 && o->ne[d] != pr->ne[d])) {
            tv_fail(S, "attention shapes: scores %lldx%lld, probabilities %lldx%lld, result %lldx%lld (dim %d)", (long long)sc->ne[0],
                    (long long)sc->ne[1], (long long)pr->ne[0], (long long)pr->ne[1], (long long)o->ne[0], (long long)o->ne[1], d);
            return 0;
        }
    return 1;
}

/* the program of group gi is well formed (indices, ops, shapes, stores) */
TT_FN int tv_check_program(tv_state *S, int gi) {
    const tfu_plan_view *v = S->v;
    const tfu_pv_group *G = &v->groups[gi];
    int k, s, ok = 1, d;
    if (G->n_instr < 1 || (G->kind == TFU_GROUP_OTHER && G->n_instr != 1) || (G->kind == TFU_GROUP_ATTENTION && G->n_instr != 3)) {
        tv_fail(S, "%d instructions in a group of kind %d", G->n_instr, (int)G->kind);
        return 0;
    }
    if (G->kind == TFU_GROUP_ATTENTION && !tv_check_attention(S, G)) return 0;
    for (k = 0; k < G->n_instr; k++) {
        const tfu_pv_instr *I = &v->instrs[G->first_instr + k];
        const tfu_tensor *t, *space;
        S->instr = G->first_instr + k;
        if (I->tensor < 0 || I->tensor >= v->n_tensors) {
            tv_fail(S, "tensor %d outside [0, %d)", I->tensor, v->n_tensors);
            return 0;
        }
        t = v->tensors[I->tensor];
        space = t->op == TFU_OP_SET_ROWS ? t->src[0] : t;   /* set_rows iterates over the rows it writes */
        if (G->kind == TFU_GROUP_ATTENTION && k < 2) space = v->tensors[v->instrs[G->first_instr + 2].tensor];   /* checked above */
        if (!tv_op_fits(G->kind, t->op)) {
            tv_fail(S, "%s in a group of kind %d", tfu_op_name(t->op), (int)G->kind);
            ok = 0;
        }
        if (S->computed_by[I->tensor] >= 0) {
            tv_fail(S, "tensor %d computed twice (also by instr %d)", I->tensor, S->computed_by[I->tensor]);
            ok = 0;
        }
        S->computed_by[I->tensor] = G->first_instr + k;
        for (d = 0; d < TFU_MAX_DIMS; d++)
            if (space->ne[d] != G->ne[d]) {
                tv_fail(S, "%s of shape %lldx%lldx%lldx%lld in an iteration space %lldx%lldx%lldx%lld", tfu_op_name(t->op),
                        (long long)space->ne[0], (long long)space->ne[1], (long long)space->ne[2], (long long)space->ne[3],
                        (long long)G->ne[0], (long long)G->ne[1], (long long)G->ne[2], (long long)G->ne[3]);
                ok = 0;
                break;
            }
        if (I->n_src < 1 || I->n_src > TFU_MAX_SRC) {
            tv_fail(S, "%d sources", I->n_src);
            return 0;
        }
        for (s = 0; s < I->n_src; s++) {
            int32_t r = I->src[s];
            if (r >= k || -1 - r >= G->n_operands) {
                tv_fail(S, "source %d is %d: neither an earlier instruction nor one of %d operands", s, r, G->n_operands);
                return 0;
            }
        }
        if (t->op == TFU_OP_GLU && I->n_src != 2) {
            tv_fail(S, "GLU with %d sources", I->n_src);
            ok = 0;
        }
        if (t->op == TFU_OP_CPY || t->op == TFU_OP_SET_ROWS) {
            if (!I->store) {
                tv_fail(S, "a copy not stored");
                ok = 0;
            }
        } else if ((v->offset[I->tensor] >= 0) != (I->store != 0)) {
            tv_fail(S, "%s: offset %lld but store %d", tfu_op_name(t->op), (long long)v->offset[I->tensor], I->store);
            ok = 0;
        } else if ((t->flags & (TFU_FLAG_OUTPUT | TFU_FLAG_KEEP)) && !I->store) {
            tv_fail(S, "flagged %s not stored", tfu_op_name(t->op));
            ok = 0;
        }
    }
    for (k = 0; k < G->n_operands; k++) {
        const tfu_pv_operand *o = &v->operands[G->first_operand + k];
        if (o->tensor < 0 || o->tensor >= v->n_tensors) {
            tv_fail(S, "operand %d: tensor %d outside [0, %d)", k, o->tensor, v->n_tensors);
            return 0;
        }
    }
    return ok;
}

TT_FN void tv_run_group(tv_state *S, int gi) {
    const tfu_plan_view *v = S->v;
    const tfu_pv_group *G = &v->groups[gi];
    int k;
    S->group = gi;
    S->G = G;
    S->instr = -1;
    tv_last.n_groups++;
    if (!tv_check_program(S, gi)) return;
    S->opnd = (tv_ref *)calloc((size_t)G->n_operands + 1, sizeof(tv_ref));
    S->out = (tv_ref *)calloc((size_t)G->n_instr, sizeof(tv_ref));
    S->buf = (float **)calloc((size_t)G->n_instr, sizeof(float *));
    if (!S->opnd || !S->out || !S->buf) {
        tv_fail(S, "no memory");
        goto done;
    }
    S->instr = -1;
    for (k = 0; k < G->n_operands; k++) tv_locate(S, v->operands[G->first_operand + k].tensor, 0, &S->opnd[k]);
    for (k = 0; k < G->n_instr; k++) {
        const tfu_pv_instr *I = &v->instrs[G->first_instr + k];
        const tfu_tensor *t = v->tensors[I->tensor];
        S->instr = G->first_instr + k;
        tv_last.n_instrs++;
        S->buf[k] = (float *)malloc((size_t)tfu_nelements(t) * sizeof(float));
        if (!S->buf[k]) {
            tv_fail(S, "no memory");
            goto done;
        }
        if (t->op == TFU_OP_SET_ROWS) {
            tv_run_set_rows(S, k, I);
            continue;
        }
        if (tv_is_row(t->op)) tv_run_row(S, I, S->buf[k]);
        else if (t->op == TFU_OP_MUL_MAT) tv_run_matmul(S, I, S->buf[k]);
        else if (tv_is_other(t->op)) tv_run_other(S, I, S->buf[k]);
        else tv_run_eltwise(S, I, S->buf[k]);
        if (I->store && tv_locate(S, I->tensor, 1, &S->out[k])) tv_store_all(S, k, S->buf[k]);
    }
    S->instr = -1;
    for (k = 0; k < G->n_operands; k++) tv_check_range(S, &S->opnd[k], 0);
    for (k = 0; k < G->n_instr; k++) tv_check_range(S, &S->out[k], 1);
done:
    if (S->buf)
        for (k = 0; k < G->n_instr; k++) free(S->buf[k]);
    free(S->buf);
    free(S->opnd);
    free(S->out);
    S->buf = NULL;
    S->opnd = NULL;
    S->out = NULL;
}

/* stages and groups are laid out as the view says */
TT_FN int tv_check_layout(tv_state *S) {
    const tfu_plan_view *v = S->v;
    int s, gi;
    if (v->stage_first[0] != 0 || v->stage_first[v->n_stages] != v->n_groups || v->range_first[0] != 0) {
        tv_fail(S, "stage_first [0] %d [n] %d for %d groups, range_first[0] %d", v->stage_first[0],
                v->stage_first[v->n_stages], v->n_groups, v->range_first[0]);
        return 0;
    }
    for (s = 0; s < v->n_stages; s++) {
        if (v->range_first[s + 1] < v->range_first[s] || v->stage_first[s + 1] <= v->stage_first[s]) {
            tv_fail(S, "stage %d: groups [%d, %d), ranges [%d, %d)", s, v->stage_first[s], v->stage_first[s + 1],
                    v->range_first[s], v->range_first[s + 1]);
            return 0;
        }
        for (gi = v->stage_first[s]; gi < v->stage_first[s + 1]; gi++)
            if (v->groups[gi].stage != s) {
                tv_fail(S, "group %d listed in stage %d says stage %d", gi, s, v->groups[gi].stage);
                return 0;
            }
    }
    return 1;
}

TT_FN int tv_run(const tfu_plan_view *v, void *arena) {
    tv_state S;
    int i, s, gi, ok = 1;
    memset(&tv_last, 0, sizeof tv_last);
    memset(&S, 0, sizeof S);
    S.v = v;
    S.arena = (unsigned char *)arena;
    S.stage = -1;
    S.group = -1;
    S.instr = -1;
    if (v->arena_bytes && (!arena || (uintptr_t)arena % 64 != 0)) {
        tv_fail(&S, "the arena must be 64-byte aligned");
        return tv_last.n_fail;
    }
    if (v->arena_bytes) memset(arena, 0xFF, v->arena_bytes);   /* poison: NaN in every f32 */
    S.leaf_sh = (tv_shadow *)calloc((size_t)v->n_tensors + 1, sizeof(tv_shadow));
    S.computed_by = (int32_t *)malloc(((size_t)v->n_tensors + 1) * sizeof(int32_t));
    if (!S.leaf_sh || !S.computed_by || !tv_shadow_init(&S.arena_sh, v->arena_bytes)) {
        tv_fail(&S, "no memory");
        ok = 0;
    }
    for (i = 0; ok && i < v->n_tensors; i++) {
        S.computed_by[i] = -1;
        if (v->offset[i] >= 0 && v->offset[i] % 64 != 0) tv_last.n_offsets_unaligned++;
    }
    /* leaves some copy writes get a shadow; the others are only read */
    for (i = 0; ok && i < v->n_tensors; i++) {
        const tfu_tensor *t = v->tensors[i];
        int r = v->root[i];
        if ((t->op != TFU_OP_CPY && t->op != TFU_OP_SET_ROWS) || r < 0 || r >= v->n_tensors || !tv_is_leaf(v->tensors[r]) ||
            S.leaf_sh[r].size)
            continue;
        if (!tv_shadow_init(&S.leaf_sh[r], tfu_nbytes(v->tensors[r]))) ok = 0;
    }
    if (ok && tv_check_layout(&S)) {
        for (s = 0; s < v->n_stages; s++) {
            S.stage = s;
            for (gi = v->stage_first[s]; gi < v->stage_first[s + 1]; gi++) tv_run_group(&S, gi);
        }
        /* every computed tensor but views is one instruction */
        S.stage = -1;
        S.group = -1;
        S.instr = -1;
        for (i = 0; i < v->n_tensors; i++) {
            tfu_op op = v->tensors[i]->op;
            if (op != TFU_OP_NONE && op != TFU_OP_VIEW && S.computed_by[i] < 0)
                tv_fail(&S, "tensor %d (%s) is computed by no instruction", i, tfu_op_name(op));
            if ((op == TFU_OP_NONE || op == TFU_OP_VIEW) && S.computed_by[i] >= 0)
                tv_fail(&S, "tensor %d (%s) is an instruction", i, tfu_op_name(op));
        }
    }
    if (S.leaf_sh)
        for (i = 0; i < v->n_tensors; i++) tv_shadow_free(&S.leaf_sh[i]);
    tv_shadow_free(&S.arena_sh);
    free(S.leaf_sh);
    free(S.computed_by);
    return tv_last.n_fail;
}
#endif
