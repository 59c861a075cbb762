//go:build !openblas

package compute

// BLASName names the matrix-product library this binary was built with.
const BLASName = "gonum (pure Go)"

// tiles splits an m×n product into tm×tn tiles. gonum's Sgemm runs serially
// (and allocates nothing) only below 4 blocks of 64x64, so tiles stay within
// 64 rows × 192 columns; more tiles than threads balance the load.
func tiles(m, n, k, p int) (tm, tn int) {
	if p <= 1 || m*n*k < 1<<16 {
		if m <= 64 && n <= 192 || (m <= 128 && n <= 64) {
			return 1, 1
		}
	}
	return (m + 63) / 64, (n + 191) / 192
}
