// program.glsl - a group's program in specialisation constants, evaluated
// straight-line: slot k holds instruction k (op, sources, GLU kind, store
// descriptor and type, two float parameters), so once the driver folds
// the constants each slot is one operation on registers. Sources: >= 0 an
// earlier slot, <= -1 descriptor -1 - s read at the element with
// broadcasting, NO_SRC none. The including shader defines
//   float row_value(int k, float x, float mask)   (row kernels)
//   float mm_value(int product)                   (matrix-product kernels)
// and sets g_i0..g_i3 (the element) and g_e (its flat index) before
// calling eval(); K6 (element-wise and row kernels) says which of them the
// descriptors' modes read: 0 all, 1 g_i0 and g_e, 2 g_e alone.
#define NO_SRC 1000

layout(constant_id = 0) const int NI = 1;   // instructions
layout(constant_id = 1) const int K0 = 0;   // kernel-specific
layout(constant_id = 2) const int K1 = 0;
layout(constant_id = 3) const int K2 = 0;
layout(constant_id = 4) const int K3 = 0;
layout(constant_id = 5) const int K4 = 0;
layout(constant_id = 6) const int K5 = 0;
layout(constant_id = 7) const int K6 = 0;

#define SLOT_CONSTS(k, base) \
    layout(constant_id = base + 0) const int OP##k = -1; \
    layout(constant_id = base + 1) const int SA##k = NO_SRC; \
    layout(constant_id = base + 2) const int SB##k = NO_SRC; \
    layout(constant_id = base + 3) const int AX##k = 0; \
    layout(constant_id = base + 4) const int ST##k = -1; \
    layout(constant_id = base + 5) const int SY##k = 0; \
    layout(constant_id = base + 6) const float PA##k = 0.0; \
    layout(constant_id = base + 7) const float PB##k = 0.0;
SLOT_CONSTS(0, 16) SLOT_CONSTS(1, 24) SLOT_CONSTS(2, 32) SLOT_CONSTS(3, 40)
SLOT_CONSTS(4, 48) SLOT_CONSTS(5, 56) SLOT_CONSTS(6, 64) SLOT_CONSTS(7, 72)
SLOT_CONSTS(8, 80) SLOT_CONSTS(9, 88) SLOT_CONSTS(10, 96) SLOT_CONSTS(11, 104)

// descriptor types
#define TYPE_CONST(d) layout(constant_id = 128 + d) const int TY##d = 0;
TYPE_CONST(0) TYPE_CONST(1) TYPE_CONST(2) TYPE_CONST(3) TYPE_CONST(4) TYPE_CONST(5)
TYPE_CONST(6) TYPE_CONST(7) TYPE_CONST(8) TYPE_CONST(9) TYPE_CONST(10) TYPE_CONST(11)
TYPE_CONST(12) TYPE_CONST(13) TYPE_CONST(14) TYPE_CONST(15) TYPE_CONST(16) TYPE_CONST(17)
TYPE_CONST(18) TYPE_CONST(19) TYPE_CONST(20) TYPE_CONST(21) TYPE_CONST(22) TYPE_CONST(23)
TYPE_CONST(24) TYPE_CONST(25) TYPE_CONST(26) TYPE_CONST(27) TYPE_CONST(28) TYPE_CONST(29)
TYPE_CONST(30) TYPE_CONST(31)

// a descriptor's constant: its type (bits 0-1) and, in the element-wise
// and row kernels, its addressing mode (bits 2 and up; the runtime's
// TFVK_X_MD_*): GENERIC from the four coordinates with broadcasting, FLAT
// first + the element's flat index g_e, ROW first + g_i0, SCALAR first,
// PLANE first + g_e modulo the operand's ne0 ne1 (broadcast over dims 2-3)
#define MD_GENERIC 0
#define MD_FLAT 1
#define MD_ROW 2
#define MD_SCALAR 3
#define MD_PLANE 4
int ty_const(int d) {
    switch (d) {
    case 0: return TY0; case 1: return TY1; case 2: return TY2; case 3: return TY3;
    case 4: return TY4; case 5: return TY5; case 6: return TY6; case 7: return TY7;
    case 8: return TY8; case 9: return TY9; case 10: return TY10; case 11: return TY11;
    case 12: return TY12; case 13: return TY13; case 14: return TY14; case 15: return TY15;
    case 16: return TY16; case 17: return TY17; case 18: return TY18; case 19: return TY19;
    case 20: return TY20; case 21: return TY21; case 22: return TY22; case 23: return TY23;
    case 24: return TY24; case 25: return TY25; case 26: return TY26; case 27: return TY27;
    case 28: return TY28; case 29: return TY29; case 30: return TY30; case 31: return TY31;
    }
    return 0;
}
int type_of(int d) { return ty_const(d) & 3; }
int mode_of(int d) { return ty_const(d) >> 2; }

#define SLOT_FIELD(name, k) \
    switch (k) { case 0: return name##0; case 1: return name##1; case 2: return name##2; case 3: return name##3; \
    case 4: return name##4; case 5: return name##5; case 6: return name##6; case 7: return name##7; \
    case 8: return name##8; case 9: return name##9; case 10: return name##10; case 11: return name##11; }
int op_of(int k) { SLOT_FIELD(OP, k) return -1; }
int sa_of(int k) { SLOT_FIELD(SA, k) return NO_SRC; }
int sb_of(int k) { SLOT_FIELD(SB, k) return NO_SRC; }
float pa_of(int k) { SLOT_FIELD(PA, k) return 0.0; }
float pb_of(int k) { SLOT_FIELD(PB, k) return 0.0; }
int ax_of(int k) { SLOT_FIELD(AX, k) return 0; }

uint g_i0, g_i1, g_i2, g_i3;
uint g_e;   // the element's flat index in the iteration space (FLAT operands)
float v[MAXI];

float load_d(int d) {
    int m = mode_of(d);
    uint e;
    if (m == MD_FLAT) e = P.p[DESC(d) + 1u] + g_e;
    else if (m == MD_ROW) e = P.p[DESC(d) + 1u] + g_i0;
    else if (m == MD_SCALAR) e = P.p[DESC(d) + 1u];
    else if (m == MD_PLANE) e = P.p[DESC(d) + 1u] + g_e % (P.p[DESC(d) + 2u] * P.p[DESC(d) + 3u]);
    else e = d_index(d, g_i0, g_i1, g_i2, g_i3);
    return load_e(d_binding(d), type_of(d), e);
}

// where a store goes: flat, or exact from the coordinates
uint store_index(int d) { return mode_of(d) == MD_FLAT ? P.p[DESC(d) + 1u] + g_e : d_at(d, g_i0, g_i1, g_i2, g_i3); }

float src_val(int s) {
    if (s == NO_SRC) return 0.0;
    if (s >= 0) return v[s];
    return load_d(-1 - s);
}

bool is_row_op(int op) { return op == OP_RMS_NORM || op == OP_NORM || op == OP_SOFT_MAX; }


// evaluates slots [0, limit) at element (g_i0..g_i3); a loop over the
// slots, which the driver unrolls once NI is known (keeping the shader
// small before specialisation, so pipelines compile fast)
void eval(int limit) {
    [[unroll]] for (int k = 0; k < MAXI; k++) {
        if (k >= NI || k >= limit) break;
        int op = op_of(k);
        if (op == OP_MUL_MAT) {
            v[k] = mm_value(ax_of(k));
        } else {
            float a_ = src_val(sa_of(k));
            float b_ = src_val(sb_of(k));
            if (is_row_op(op)) v[k] = row_value(k, a_, b_);
            else v[k] = elt(op, ax_of(k), pa_of(k), pb_of(k), a_, b_);
        }
    }
}

#define STORE_SLOT(k) \
    if (k < NI && ST##k >= 0) store_e(d_binding(ST##k), SY##k, store_index(ST##k), v[k]);

// stores the slots that have memory, at element (g_i0..g_i3)
void store_all() {
    STORE_SLOT(0) STORE_SLOT(1) STORE_SLOT(2) STORE_SLOT(3) STORE_SLOT(4) STORE_SLOT(5)
    STORE_SLOT(6) STORE_SLOT(7) STORE_SLOT(8) STORE_SLOT(9) STORE_SLOT(10) STORE_SLOT(11)
}

// the group's iteration space from the parameter block
uvec4 space() { return uvec4(P.p[0], P.p[1], P.p[2], P.p[3]); }
