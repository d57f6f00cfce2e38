// tq_encode_mse: batched encode of single-part MSE codes for power-of-two
// dims, one threadgroup per vector and one thread per coordinate, the steps
// of cuda/kernels/encode.cu: ‖x‖, the randomized Hadamard rotation (same
// sign and scale constants, float32, butterflies in the same order),
// Lloyd–Max boundary counts, LSB-first packing, the norm at byte 0.
//
// Apple GPUs have no float64, and the CPU accumulates ‖x‖² in float64. The
// sum is therefore done in software on the IEEE float64 bit patterns
// (squares of floats are exact there, and every term is non-negative, so
// only same-sign round-to-nearest-even additions are needed), in the CPU's
// order: eight strided partial sums, ((s0+s4)+(s2+s6))+((s1+s5)+(s3+s7)),
// then the tail. ‖x‖ and 1/‖x‖ are then taken in float-float arithmetic
// (about 46 good bits) and rounded to float32: identical to the CPU's
// float32(sqrt) and float32(1/sqrt) unless the exact value lies within about
// 2^-44 (relative) of a float32 rounding boundary.

struct EncodeArgs {
	int n, d, bits, prec, rounds, code_size, off_idx, in_type;
	float final_scale;
};

#define F64_FRAC 0xFFFFFFFFFFFFFull
#define F64_ONE (1ull << 52)

// The float64 bits of x², exact.
static inline ulong sq64(float x) {
	uint b = as_type<uint>(x) & 0x7FFFFFFFu;
	if (b == 0) return 0;
	int e = int(b >> 23);
	ulong m = b & 0x7FFFFFu;
	if (e == 0) e = 1; // subnormal: m·2^-149
	else m |= 0x800000u;
	ulong M = m * m; // < 2^48
	int lead = 63 - int(clz(M));
	M <<= (52 - lead);
	int e2 = 2 * (e - 150) - (52 - lead); // x² = M·2^e2, M in [2^52, 2^53)
	return ulong(e2 + 52 + 1023) << 52 | (M & F64_FRAC);
}

// a + b for non-negative normal (or zero) float64 bit patterns, rounded to
// nearest even, as float64 addition does.
static inline ulong add64(ulong a, ulong b) {
	if (a < b) {
		ulong t = a;
		a = b;
		b = t;
	}
	if (b == 0) return a;
	int ea = int(a >> 52), eb = int(b >> 52);
	ulong ma = ((a & F64_FRAC) | F64_ONE) << 3, mb = ((b & F64_FRAC) | F64_ONE) << 3;
	int sh = ea - eb;
	if (sh >= 64) mb = 1; // only the sticky bit survives
	else if (sh > 0) mb = (mb >> sh) | ulong((mb & ((1ull << sh) - 1)) != 0);
	ulong s = ma + mb;
	if (s >= (F64_ONE << 4)) {
		s = (s >> 1) | (s & 1);
		ea++;
	}
	ulong low = s & 7;
	s >>= 3;
	if (low > 4 || (low == 4 && (s & 1))) s++;
	if (s == (F64_ONE << 1)) {
		s >>= 1;
		ea++;
	}
	return ulong(ea) << 52 | (s & F64_FRAC);
}

// From S = ‖x‖² (float64 bits): the float32 norm, float32(1/‖x‖) and whether
// the norm fits the norm's precision (prec 0: fp16, below 65520; else fp32).
static void norm_scalars(ulong S, int prec, thread float *nrm, thread float *inv, thread int *fits) {
	if (S == 0) {
		*nrm = 0.0f;
		*inv = 0.0f;
		*fits = 1;
		return;
	}
	int E = int(S >> 52) - 1023;
	ulong M = (S & F64_FRAC) | F64_ONE;
	int k = E >> 1; // S = Sm·4^k, Sm in [1, 4)
	float hi = float(uint(M >> 29)) * 1.1920928955078125e-7f /* 2^-23 */;
	float lo = float(uint(M & 0x1FFFFFFFull)) * 2.220446049250313e-16f /* 2^-52 */;
	if (E & 1) {
		hi = hi * 2.0f;
		lo = lo * 2.0f;
	}
	// sqrt(Sm) = r0 + corr, one Newton step from the float sqrt with the
	// residual computed exactly (fma), then the reciprocal likewise.
	float r0 = sqrt(hi);
	float p = r0 * r0;
	float pe = fma(r0, r0, -p);
	float resid = ((hi - p) - pe) + lo;
	float corr = resid * (0.5f / r0);
	float y0 = 1.0f / r0;
	float t = fma(-r0, y0, 1.0f) - corr * y0;
	float fhi = ldexp(r0, k), flo = ldexp(corr, k);
	*nrm = ldexp(r0 + corr, k);
	*inv = ldexp(y0 + y0 * t, -k);
	const float flt_max = 3.40282346638528859812e+38f;
	if (prec) *fits = fhi < flt_max || (fhi == flt_max && flo <= 0.0f);
	else *fits = fhi < 65520.0f || (fhi == 65520.0f && flo < 0.0f);
}

static inline float load_in(device const uchar *x, int type, uint i) {
	if (type == IN_F16) return half_bits(load_u16(x + 2 * i));
	if (type == IN_BF16) return bf16_bits(load_u16(x + 2 * i));
	return load_f32(x + 4 * i);
}

// x: [n][d] inputs of in_type. signs: [rounds][d]; final_scale the last
// normalisation. bounds: the 2^bits − 1 boundaries. codes: [n][code_size].
// status[v] = 1 when vector v's norm does not fit (its code is not written).
// Threadgroup memory: u [d] floats, idx [d] bytes, ss [8] float64 bits,
// sc [4] floats.
kernel void tq_encode_mse(device const uchar *x [[buffer(0)]], constant EncodeArgs &a [[buffer(1)]],
                          device const float *signs [[buffer(2)]], device const float *bounds [[buffer(3)]],
                          device uchar *codes [[buffer(4)]], device int *status [[buffer(5)]],
                          threadgroup float *u [[threadgroup(0)]], threadgroup uchar *idx [[threadgroup(1)]],
                          threadgroup ulong *ss [[threadgroup(2)]], threadgroup float *sc [[threadgroup(3)]],
                          uint j [[thread_position_in_threadgroup]], uint v [[threadgroup_position_in_grid]]) {
	int d = a.d;
	if (int(v) >= a.n) return;
	device const uchar *xv = x + ulong(v) * ulong(d) * (a.in_type == IN_F32 ? 4 : 2);
	u[j] = load_in(xv, a.in_type, j);
	threadgroup_barrier(mem_flags::mem_threadgroup);
	int n8 = d & ~7;
	if (j < 8) {
		ulong s = 0;
		for (int i = int(j); i < n8; i += 8) s = add64(s, sq64(u[i]));
		ss[j] = s;
	}
	threadgroup_barrier(mem_flags::mem_threadgroup);
	if (j == 0) {
		ulong s = 0;
		if (n8 > 0) s = add64(add64(add64(ss[0], ss[4]), add64(ss[2], ss[6])), add64(add64(ss[1], ss[5]), add64(ss[3], ss[7])));
		for (int i = n8; i < d; i++) s = add64(s, sq64(u[i]));
		float nrm, inv;
		int fits;
		norm_scalars(s, a.prec, &nrm, &inv, &fits);
		sc[0] = nrm;
		sc[1] = inv;
		sc[2] = fits ? 1.0f : 0.0f;
	}
	threadgroup_barrier(mem_flags::mem_threadgroup);
	float nrm = sc[0], inv = sc[1];
	if (sc[2] == 0.0f) {
		if (j == 0) status[v] = 1;
		return;
	}
	device uchar *code = codes + ulong(v) * ulong(a.code_size);
	for (int r = 0; r < a.rounds; r++) {
		u[j] = u[j] * signs[r * d + int(j)];
		threadgroup_barrier(mem_flags::mem_threadgroup);
		for (int h = 1; h < d; h <<= 1) {
			if ((int(j) & h) == 0) {
				float p = u[j], q = u[int(j) + h];
				u[j] = p + q;
				u[int(j) + h] = p - q;
			}
			threadgroup_barrier(mem_flags::mem_threadgroup);
		}
	}
	float y = nrm > 0.0f ? u[j] * (a.final_scale * inv) : 0.0f;
	int nb = (1 << a.bits) - 1, k = 0;
	for (int i = 0; i < nb; i++) k += bounds[i] < y ? 1 : 0;
	idx[j] = uchar(k);
	threadgroup_barrier(mem_flags::mem_threadgroup);
	int bits = a.bits, nbytes = (d * bits + 7) / 8;
	for (int b = int(j); b < nbytes; b += d) {
		uint acc = 0;
		int lo = (8 * b) / bits, hi = (8 * b + 7) / bits;
		for (int c = lo; c <= hi && c < d; c++) {
			int shift = c * bits - 8 * b; // negative for an index straddling in
			uint w = idx[c];
			acc |= shift >= 0 ? w << shift : w >> -shift;
		}
		code[a.off_idx + b] = uchar(acc);
	}
	if (j == 0) {
		status[v] = 0;
		if (a.prec) {
			uint w = as_type<uint>(nrm);
			code[0] = uchar(w), code[1] = uchar(w >> 8), code[2] = uchar(w >> 16), code[3] = uchar(w >> 24);
		} else {
			uint hf = half_from(nrm);
			code[0] = uchar(hf), code[1] = uchar(hf >> 8);
		}
	}
}
