package main

import (
	"slices"
	"testing"
)

// TestRotation checks that over n rounds each of n runners comes once in
// every position, so none is always first.
func TestRotation(t *testing.T) {
	for n := 1; n <= 4; n++ {
		first := make([]int, n)
		for k := range n {
			order := rotation(k, n)
			sorted := slices.Sorted(slices.Values(order))
			for i, v := range sorted {
				if v != i {
					t.Fatalf("rotation(%d, %d) = %v: not each runner once", k, n, order)
				}
			}
			first[order[0]]++
		}
		for i, c := range first {
			if c != 1 {
				t.Errorf("n=%d: runner %d first in %d of %d rounds", n, i, c, n)
			}
		}
	}
	if got := rotation(1, 3); !slices.Equal(got, []int{1, 2, 0}) {
		t.Errorf("rotation(1, 3) = %v, want [1 2 0]", got)
	}
}

// TestRoundRatios checks the spread of the rounds' ratios.
func TestRoundRatios(t *testing.T) {
	var r versusRow
	for _, n := range [][2]int64{{100, 100}, {90, 100}, {120, 100}} {
		r.tote.add(result{requests: n[0], duration: 1e9, runs: []wrkRun{{requests: n[0], duration: 1e9}}})
		r.versus.add(result{requests: n[1], duration: 1e9, runs: []wrkRun{{requests: n[1], duration: 1e9}}})
	}
	lo, med, hi := r.roundRatios()
	if lo != 0.9 || med != 1 || hi != 1.2 {
		t.Errorf("roundRatios = %v, %v, %v; want 0.9, 1, 1.2", lo, med, hi)
	}
	if got := r.ratio(); got < 1.033 || got > 1.034 {
		t.Errorf("ratio = %v, want 310/300", got)
	}
}
