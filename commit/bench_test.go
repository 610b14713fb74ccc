package commit_test

import (
	"testing"

	"github.com/goatdb/goatdb/commit"
)

// The workload item is testItem: {title: "Item 42", count: 42, tags: {"tag42","category2"}}.

func benchNew(b *testing.B, signed bool) {
	priv, s := testKey(1)
	if !signed {
		priv = nil
	}
	f := fullFields(s, testID(7))
	b.ReportAllocs()
	var c *commit.Commit
	for b.Loop() {
		var err error
		if c, err = commit.New(f, priv); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(c.Size()), "bytes/commit")
}

func BenchmarkNewSigned(b *testing.B)   { benchNew(b, true) }
func BenchmarkNewUnsigned(b *testing.B) { benchNew(b, false) }

func BenchmarkDecode(b *testing.B) {
	priv, s := testKey(1)
	enc := mustNew(b, fullFields(s, testID(7)), priv).Encode()
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, err := commit.Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	priv, s := testKey(1)
	c := mustDecode(b, mustNew(b, fullFields(s, testID(7)), priv).Encode())
	b.ReportAllocs()
	for b.Loop() {
		if err := c.VerifySignature(true); err != nil {
			b.Fatal(err)
		}
	}
}
