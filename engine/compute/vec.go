package compute

// Vector loops of the element-wise kernels: the AVX2 assembly for whole
// blocks of 8 where the CPU has it, plain Go for the rest (and everywhere
// else).

func blocks8(n int) int {
	if !hasAVX2 {
		return 0
	}
	return n &^ 7
}

// vGELUBias: x = GELU(x + bias).
func vGELUBias(x, bias []float32) {
	bias = bias[:len(x)]
	n := blocks8(len(x))
	if n > 0 {
		geluBiasAVX2(x[:n], bias[:n])
	}
	for i := n; i < len(x); i++ {
		x[i] = GELU(x[i] + bias[i])
	}
}

func vDot(a, b []float32) float32 {
	b = b[:len(a)]
	n := blocks8(len(a))
	var s float32
	if n > 0 {
		s = dotAVX2(a[:n], b[:n])
	}
	for i := n; i < len(a); i++ {
		s += a[i] * b[i]
	}
	return s
}

// vAxpy: dst += a·x.
func vAxpy(dst, x []float32, a float32) {
	x = x[:len(dst)]
	n := blocks8(len(dst))
	if n > 0 {
		axpyAVX2(dst[:n], x[:n], a)
	}
	for i := n; i < len(dst); i++ {
		dst[i] += a * x[i]
	}
}

func vSum(x []float32) float32 {
	n := blocks8(len(x))
	var s float64
	if n > 0 {
		s = float64(sumAVX2(x[:n]))
	}
	for i := n; i < len(x); i++ {
		s += float64(x[i])
	}
	return float32(s)
}

// vSqDev is Σ (x − mean)².
func vSqDev(x []float32, mean float32) float32 {
	n := blocks8(len(x))
	var s float64
	if n > 0 {
		s = float64(sqDevAVX2(x[:n], mean))
	}
	for i := n; i < len(x); i++ {
		d := float64(x[i] - mean)
		s += d * d
	}
	return float32(s)
}

// vNormMod: dst = ((x − mean)·rstd·γ + β)·(1 + scale) + shift, or without
// γ, β when gamma is nil.
func vNormMod(dst, x, gamma, beta, scale, shift []float32, mean, rstd float32) {
	m := len(x)
	dst, scale, shift = dst[:m], scale[:m], shift[:m]
	n := blocks8(m)
	if gamma != nil {
		gamma, beta = gamma[:m], beta[:m]
		if n > 0 {
			normModAVX2(dst[:n], x[:n], gamma[:n], beta[:n], scale[:n], shift[:n], mean, rstd)
		}
		for i := n; i < m; i++ {
			y := (x[i]-mean)*rstd*gamma[i] + beta[i]
			dst[i] = y*(1+scale[i]) + shift[i]
		}
		return
	}
	if n > 0 {
		normModPlainAVX2(dst[:n], x[:n], scale[:n], shift[:n], mean, rstd)
	}
	for i := n; i < m; i++ {
		y := (x[i] - mean) * rstd
		dst[i] = y*(1+scale[i]) + shift[i]
	}
}

// vGatedAdd: h = base + gate·(t + bias).
func vGatedAdd(h, base, gate, t, bias []float32) {
	m := len(h)
	base, gate, t, bias = base[:m], gate[:m], t[:m], bias[:m]
	n := blocks8(m)
	if n > 0 {
		gatedAddAVX2(h[:n], base[:n], gate[:n], t[:n], bias[:n])
	}
	for i := n; i < m; i++ {
		h[i] = base[i] + gate[i]*(t[i]+bias[i])
	}
}

// vAdd3: dst = (a + b) + c.
func vAdd3(dst, a, b, c []float32) {
	m := len(dst)
	a, b, c = a[:m], b[:m], c[:m]
	n := blocks8(m)
	if n > 0 {
		add3AVX2(dst[:n], a[:n], b[:n], c[:n])
	}
	for i := n; i < m; i++ {
		dst[i] = a[i] + b[i] + c[i]
	}
}

// vHeadDots: out[h] = q_h · k_h for each head h of width hd (len(out) heads).
func vHeadDots(q, k, out []float32, hd int) {
	heads := len(out)
	q, k = q[:heads*hd], k[:heads*hd]
	if hasAVX2 && hd%8 == 0 && hd > 0 {
		headDotsAVX2(q, k, out, hd)
		return
	}
	for h := range out {
		out[h] = vDot(q[h*hd:(h+1)*hd], k[h*hd:(h+1)*hd])
	}
}

// vHeadAxpy: o_h += p[h]·v_h for each head h of width hd (len(p) heads).
func vHeadAxpy(o, v, p []float32, hd int) {
	heads := len(p)
	o, v = o[:heads*hd], v[:heads*hd]
	if hasAVX2 && hd%8 == 0 && hd > 0 {
		headAxpyAVX2(o, v, p, hd)
		return
	}
	for h, w := range p {
		vAxpy(o[h*hd:(h+1)*hd], v[h*hd:(h+1)*hd], w)
	}
}
