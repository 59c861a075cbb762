// Package shard splits a numbered set of work items (sample indices, images)
// over independent processes, as batch systems run them: shard K of N takes
// the items i with i mod N = K. The split depends only on the indices, so
// every shard can run anywhere, in any order, and the shards together cover
// each item exactly once.
//
// "auto" takes K and N from the environment of the batch system running the
// process: a Slurm job array (SLURM_ARRAY_TASK_ID, counted from
// SLURM_ARRAY_TASK_MIN, with SLURM_ARRAY_TASK_COUNT tasks) or a Kubernetes
// Indexed Job (JOB_COMPLETION_INDEX; the number of completions is not in a
// pod's environment, so it comes from "auto/N" or $GECA_SHARD_COUNT).
package shard

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Shard is shard K of N (0 ≤ K < N).
type Shard struct{ K, N int }

// All is the whole set: one shard.
var All = Shard{0, 1}

// Has reports whether item i belongs to the shard.
func (s Shard) Has(i int) bool { return i%s.N == s.K }

// Items returns the items of [0, n) in the shard, ascending.
func (s Shard) Items(n int) []int {
	var out []int
	for i := s.K; i < n; i += s.N {
		out = append(out, i)
	}
	return out
}

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.K, s.N) }

// Env is the environment Parse reads for "auto" (os.Getenv in use).
type Env func(string) string

// Parse reads "K/N", "auto" or "auto/N" ("" is All).
func Parse(spec string, env Env) (Shard, error) {
	if env == nil {
		env = os.Getenv
	}
	spec = strings.TrimSpace(spec)
	switch {
	case spec == "":
		return All, nil
	case spec == "auto" || strings.HasPrefix(spec, "auto/"):
		n := 0
		if rest, ok := strings.CutPrefix(spec, "auto/"); ok {
			v, err := strconv.Atoi(rest)
			if err != nil || v < 1 {
				return Shard{}, fmt.Errorf("shard %q: the count after auto/ must be a positive integer", spec)
			}
			n = v
		}
		return fromEnv(spec, n, env)
	}
	k, n, ok := strings.Cut(spec, "/")
	ki, err1 := strconv.Atoi(k)
	ni, err2 := strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("shard %q: want K/N (for example 0/4), auto or auto/N", spec)
	}
	return check(spec, ki, ni)
}

func check(spec string, k, n int) (Shard, error) {
	if n < 1 || n > 1<<20 || k < 0 || k >= n {
		return Shard{}, fmt.Errorf("shard %q: want 0 ≤ K < N ≤ %d, have K=%d N=%d", spec, 1<<20, k, n)
	}
	return Shard{k, n}, nil
}

func fromEnv(spec string, n int, env Env) (Shard, error) {
	atoi := func(name string) (int, bool, error) {
		v := env(name)
		if v == "" {
			return 0, false, nil
		}
		i, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return 0, true, fmt.Errorf("shard %s: $%s=%q is not an integer", spec, name, v)
		}
		return i, true, nil
	}
	if id, ok, err := atoi("SLURM_ARRAY_TASK_ID"); err != nil {
		return Shard{}, err
	} else if ok {
		lo, _, err := atoi("SLURM_ARRAY_TASK_MIN")
		if err != nil {
			return Shard{}, err
		}
		count, hasCount, err := atoi("SLURM_ARRAY_TASK_COUNT")
		if err != nil {
			return Shard{}, err
		}
		if n == 0 {
			if !hasCount {
				return Shard{}, fmt.Errorf("shard %s: Slurm array task %d without $SLURM_ARRAY_TASK_COUNT; give the count as auto/N", spec, id)
			}
			n = count
		}
		return check(spec, id-lo, n)
	}
	if idx, ok, err := atoi("JOB_COMPLETION_INDEX"); err != nil {
		return Shard{}, err
	} else if ok {
		if n == 0 {
			c, has, err := atoi("GECA_SHARD_COUNT")
			if err != nil {
				return Shard{}, err
			}
			if !has {
				return Shard{}, fmt.Errorf("shard %s: Kubernetes completion index %d, but the number of completions is unknown: set $GECA_SHARD_COUNT or give auto/N", spec, idx)
			}
			n = c
		}
		return check(spec, idx, n)
	}
	return Shard{}, fmt.Errorf("shard %s: neither a Slurm job array ($SLURM_ARRAY_TASK_ID) nor a Kubernetes Indexed Job ($JOB_COMPLETION_INDEX) set the environment", spec)
}
