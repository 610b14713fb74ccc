// Package riblt is a rateless invertible Bloom lookup table (Rateless
// IBLT; Yang, Gilad, Alizadeh, "Practical Rateless Set Reconciliation",
// SIGCOMM 2024, arXiv 2402.02668): set reconciliation whose cost grows
// with the difference between two sets, not with their size, and needs no
// estimate of that difference in advance.
package riblt
