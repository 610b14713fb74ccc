module github.com/goatdb/goatdb

go 1.26

require (
	github.com/klauspost/compress v1.20.3
	github.com/zeebo/blake3 v0.2.4
)

require github.com/klauspost/cpuid/v2 v2.0.12 // indirect
