package store

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/rs/zerolog"
)

func TestDurableAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Tx) error { return tx.Put(Key("m", "1"), "durable") }); err != nil {
		t.Fatal(err)
	}
	committed := false
	if err := s.UpdateThen(func(tx *Tx) error { return tx.Put(Key("m", "2"), "then") }, func() { committed = true }); err != nil || !committed {
		t.Fatalf("UpdateThen: %v, committed callback ran: %v", err, committed)
	}
	if err := s.UpdateLazy(func(tx *Tx) error { return tx.Put(Key("m", "3"), "lazy") }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.View(func(tx *Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("View after Close: %v, want ErrClosed", err)
	}
	if err := s.Update(func(tx *Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Update after Close: %v, want ErrClosed", err)
	}

	s2, err := Open(dir, Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	var got []string
	if err := s2.View(func(tx *Tx) error {
		return tx.Scan([]byte("m/"), nil, func(k []byte, dec func(any) error) (bool, error) {
			var v string
			if err := dec(&v); err != nil {
				return false, err
			}
			got = append(got, v)
			return true, nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != "durable" || got[2] != "lazy" {
		t.Fatalf("after reopen: %v", got)
	}
	var rev []string
	s2.View(func(tx *Tx) error {
		return tx.ScanReverse([]byte("m/"), func(k []byte, _ func(any) error) (bool, error) {
			rev = append(rev, string(k))
			return len(rev) < 2, nil
		})
	})
	if len(rev) != 2 || rev[0] != "m/3" || rev[1] != "m/2" {
		t.Fatalf("reverse scan: %v", rev)
	}
	var after []string
	s2.View(func(tx *Tx) error {
		return tx.Scan([]byte("m/"), []byte("m/1"), func(k []byte, _ func(any) error) (bool, error) {
			after = append(after, string(k))
			return true, nil
		})
	})
	if len(after) != 2 || after[0] != "m/2" {
		t.Fatalf("scan after m/1: %v", after)
	}
}

func TestRefusesUnknownEncoding(t *testing.T) {
	s, err := Open(t.TempDir(), Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A value written by some other version, with another encoding byte.
	if err := s.db.Update(func(t *badger.Txn) error { return t.Set([]byte("m/x"), []byte{9, '{', '}'}) }); err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	err = s.View(func(tx *Tx) error { return tx.Get([]byte("m/x"), &v) })
	if err == nil {
		t.Fatal("read a value of unknown encoding as if it were JSON")
	}
	if err := s.View(func(tx *Tx) error { return tx.Get([]byte("m/none"), &v) }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v, want ErrNotFound", err)
	}
}

func TestTTLExpires(t *testing.T) {
	s, err := Open(t.TempDir(), Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Update(func(tx *Tx) error { return tx.PutTTL([]byte("s/x"), 1, time.Second) }); err != nil {
		t.Fatal(err)
	}
	has := func() bool {
		var ok bool
		s.View(func(tx *Tx) error { ok, _ = tx.Has([]byte("s/x")); return nil })
		return ok
	}
	if !has() {
		t.Fatal("key missing right after write")
	}
	deadline := time.Now().Add(5 * time.Second)
	for has() {
		if time.Now().After(deadline) {
			t.Fatal("TTL key still there after 5 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestLowSpaceRefusesWrites: below the free-space reserve a write is
// refused with ErrLowSpace (badger would die of SIGBUS on a full disk)
// and nothing is written; reads still work.
func TestLowSpaceRefusesWrites(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Tx) error { return tx.Put(Key("x", "1"), "before") }); err != nil {
		t.Fatal(err)
	}
	s.minFree = 1 << 62 // more than any disk has
	err = s.Update(func(tx *Tx) error { return tx.Put(Key("x", "2"), "after") })
	if !errors.Is(err, ErrLowSpace) || !strings.Contains(err.Error(), "MB free") {
		t.Fatalf("write below the reserve: %v", err)
	}
	var v string
	if err := s.View(func(tx *Tx) error { return tx.Get(Key("x", "2"), &v) }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused write is there: %q %v", v, err)
	}
	if err := s.View(func(tx *Tx) error { return tx.Get(Key("x", "1"), &v) }); err != nil || v != "before" {
		t.Fatalf("read after refusal: %q %v", v, err)
	}
	s.minFree = DefaultMinFree
	if err := s.Update(func(tx *Tx) error { return tx.Put(Key("x", "2"), "after") }); err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// TestEssentialBelowReserve: below the full reserve, essential updates
// (read marks, deletes, own sends) still commit; below the hard floor
// nothing does.
func TestEssentialBelowReserve(t *testing.T) {
	s, err := Open(t.TempDir(), Options{MinFree: 1 << 62}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.essFree != DefaultEssentialFree {
		t.Fatalf("essential floor %d, want %d", s.essFree, DefaultEssentialFree)
	}
	if err := s.Update(func(tx *Tx) error { return tx.Put(Key("x", "1"), 1) }); !errors.Is(err, ErrLowSpace) {
		t.Fatalf("ordinary write below the reserve: %v", err)
	}
	for _, up := range []func(func(*Tx) error) error{s.UpdateEssential, s.UpdateLazyEssential,
		func(fn func(*Tx) error) error { return s.UpdateThenEssential(fn, func() {}) }} {
		if err := up(func(tx *Tx) error { return tx.Put(Key("x", "2"), 2) }); err != nil {
			t.Fatalf("essential write below the reserve: %v", err)
		}
	}
	s.essFree = 1 << 62
	if err := s.UpdateEssential(func(tx *Tx) error { return tx.Put(Key("x", "3"), 3) }); !errors.Is(err, ErrLowSpace) {
		t.Fatalf("essential write below the floor: %v", err)
	}
	// The floor is never above the reserve.
	s2, err := Open(t.TempDir(), Options{MinFree: 1 << 20}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.essFree != 1<<20 {
		t.Fatalf("essential floor %d above the reserve", s2.essFree)
	}
}

// TestGroupCommit: many concurrent durable writers all return with their
// write durable (read back after a reopen), sharing syncs.
func TestGroupCommit(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 16, 50
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range each {
				if err := s.Update(func(tx *Tx) error { return tx.Put(Key("g", fmt.Sprintf("%02d-%03d", w, i)), i) }); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if s.synced != s.requested || s.requested != writers*each {
		t.Fatalf("synced %d of %d requests, want all %d", s.synced, s.requested, writers*each)
	}
	s.Close()
	s, err = Open(dir, Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	s.View(func(tx *Tx) error {
		return tx.Scan(Key("g", ""), nil, func([]byte, func(any) error) (bool, error) { n++; return true, nil })
	})
	if n != writers*each {
		t.Fatalf("%d writes after reopen, want %d", n, writers*each)
	}
}

// BenchmarkDurableUpdate: one writer vs sixteen sharing syncs.
func BenchmarkDurableUpdate(b *testing.B) {
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{}, zerolog.Nop())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.SetParallelism(writers)
			var seq atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k := seq.Add(1)
					if err := s.Update(func(tx *Tx) error { return tx.Put(Key("b", fmt.Sprint(k)), k) }); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// waitMode waits up to 10 s for the store to be busy or quiet.
func waitMode(t *testing.T, s *Store, busy bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if s.isBusy() == busy {
			return
		}
	}
	t.Fatalf("store busy=%v after 10 s, want %v", s.isBusy(), busy)
}

// TestQuietWhenIdle: a store stops badger's compactors once idle, starts
// them again when a memtable flush puts a table in level 0, and loses
// nothing across the reopens, with writers running through them.
func TestQuietWhenIdle(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{QuietAfter: 200 * time.Millisecond}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if !s.isBusy() {
		t.Fatal("a store opens busy")
	}
	if err := s.Update(func(tx *Tx) error { return tx.Put(Key("m", "first"), 1) }); err != nil {
		t.Fatal(err)
	}
	waitMode(t, s, false)
	// Writes while quiet go into the memtable; about 6 MB of small
	// entries flush it (4 MB) into level 0, which makes the store busy.
	// Four writers, durable and lazy, run across the change.
	val := strings.Repeat("v", 200)
	var written atomic.Int64
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		go func() {
			for i := 0; i < 60; i++ {
				err := s.UpdateLazy(func(tx *Tx) error {
					for j := 0; j < 100; j++ {
						if err := tx.Put(Key("k", fmt.Sprintf("%d-%03d-%03d", w, i, j)), val); err != nil {
							return err
						}
					}
					return nil
				})
				if err == nil && i%10 == 0 {
					err = s.Update(func(tx *Tx) error { return tx.Put(Key("d", fmt.Sprint(w, i)), i) })
				}
				if err != nil {
					errs <- err
					return
				}
				written.Add(100)
			}
			errs <- nil
		}()
	}
	for w := 0; w < 4; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	waitMode(t, s, true)
	waitMode(t, s, false)
	count := func(s *Store) int {
		n := 0
		if err := s.View(func(tx *Tx) error {
			return tx.Scan([]byte("k/"), nil, func([]byte, func(any) error) (bool, error) { n++; return true, nil })
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := count(s); got != int(written.Load()) || got != 24000 {
		t.Fatalf("%d entries after the changes of mode, want %d", got, written.Load())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, Options{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	var first int
	if err := s2.View(func(tx *Tx) error { return tx.Get(Key("m", "first"), &first) }); err != nil || first != 1 {
		t.Fatalf("first write after reopen: %d %v", first, err)
	}
	if got := count(s2); got != 24000 {
		t.Fatalf("%d entries after reopen, want 24000", got)
	}
}

// TestSecondOpenRefused: one process holds a store; a second Open of the
// directory is refused with badger's wording (which the CLI recognises),
// also while the first store is quiet, between its reopens.
func TestSecondOpenRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{QuietAfter: 100 * time.Millisecond}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	for _, busy := range []bool{true, false} {
		waitMode(t, s, busy)
		if s2, err := Open(dir, Options{}, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "Cannot acquire directory lock") {
			if s2 != nil {
				s2.Close()
			}
			t.Fatalf("busy=%v: second Open: %v, want the directory lock refused", busy, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s3, err := Open(dir, Options{}, zerolog.Nop())
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s3.Close()
}

// TestWritableAcrossReopens: a health check during changes of mode sees
// a writable store, never the closed database being replaced.
func TestWritableAcrossReopens(t *testing.T) {
	s, err := Open(t.TempDir(), Options{QuietAfter: time.Hour}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stop := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.Writable(); err != nil {
				errs <- err
				return
			}
		}
	}()
	for i := 0; i < 6; i++ {
		s.switching.Store(true)
		if !s.setMode(i%2 == 1) {
			t.Fatalf("change of mode %d failed", i)
		}
	}
	close(stop)
	if err := <-errs; err != nil {
		t.Fatalf("Writable during a reopen: %v", err)
	}
}
