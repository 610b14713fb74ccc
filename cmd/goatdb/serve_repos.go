package main

// The bound on the repositories goatdb serve keeps open: each open
// repository holds one file descriptor (and its items in memory), so the
// default leaves three quarters of the process's file limit to
// connections, event streams and the rest.

// maxDefaultOpenRepos caps the default of --max-open-repos.
const maxDefaultOpenRepos = 1000

// defaultMaxOpenRepos is --max-open-repos's default: a quarter of the
// file descriptors the process may open (RLIMIT_NOFILE where there is
// one), at most maxDefaultOpenRepos and at least 16.
func defaultMaxOpenRepos() int {
	n, ok := fileLimit()
	if !ok {
		return maxDefaultOpenRepos
	}
	return int(max(16, min(maxDefaultOpenRepos, n/4)))
}

// defaultRepoMemoryMiB is --repo-memory's default.
const defaultRepoMemoryMiB = 512
