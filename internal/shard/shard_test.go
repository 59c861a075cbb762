package shard

import (
	"slices"
	"strings"
	"testing"
)

func env(kv ...string) Env {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		spec string
		env  Env
		want Shard
	}{
		{"", nil, All},
		{"2/5", env(), Shard{2, 5}},
		{"auto", env("SLURM_ARRAY_TASK_ID", "4", "SLURM_ARRAY_TASK_MIN", "1", "SLURM_ARRAY_TASK_COUNT", "8"), Shard{3, 8}},
		{"auto", env("SLURM_ARRAY_TASK_ID", "0", "SLURM_ARRAY_TASK_COUNT", "3"), Shard{0, 3}},
		{"auto/6", env("SLURM_ARRAY_TASK_ID", "5"), Shard{5, 6}},
		{"auto", env("JOB_COMPLETION_INDEX", "2", "GECA_SHARD_COUNT", "4"), Shard{2, 4}},
		{"auto/10", env("JOB_COMPLETION_INDEX", "9"), Shard{9, 10}},
	} {
		got, err := Parse(c.spec, c.env)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", c.spec, got, err, c.want)
		}
	}
	for _, c := range []struct {
		spec string
		env  Env
		want string
	}{
		{"5/5", env(), "0 ≤ K < N"},
		{"-1/2", env(), "0 ≤ K < N"},
		{"1", env(), "want K/N"},
		{"a/b", env(), "want K/N"},
		{"auto", env(), "neither a Slurm"},
		{"auto", env("SLURM_ARRAY_TASK_ID", "2"), "SLURM_ARRAY_TASK_COUNT"},
		{"auto", env("JOB_COMPLETION_INDEX", "2"), "GECA_SHARD_COUNT"},
		{"auto", env("JOB_COMPLETION_INDEX", "7", "GECA_SHARD_COUNT", "4"), "0 ≤ K < N"},
		{"auto", env("SLURM_ARRAY_TASK_ID", "x"), "not an integer"},
		{"auto/0", env(), "positive integer"},
	} {
		if _, err := Parse(c.spec, c.env); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", c.spec, err, c.want)
		}
	}
}

// Shards of any count partition the items: each exactly once.
func TestPartition(t *testing.T) {
	for n := 1; n <= 7; n++ {
		seen := make([]int, 50)
		for k := 0; k < n; k++ {
			s := Shard{k, n}
			for _, i := range s.Items(50) {
				if !s.Has(i) {
					t.Fatalf("%v lists %d but does not have it", s, i)
				}
				seen[i]++
			}
		}
		if slices.ContainsFunc(seen, func(c int) bool { return c != 1 }) {
			t.Fatalf("%d shards: items covered %v", n, seen)
		}
	}
}
