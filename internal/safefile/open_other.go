//go:build !unix

package safefile

const openNoBlock = 0
