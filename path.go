package goatdb

import (
	"fmt"
	"strings"
)

// SplitPath splits an item path /type/repo/item into its repository path
// (/type/repo) and item key, validating every part.
func SplitPath(path string) (repoPath, key string, err error) {
	i := strings.LastIndexByte(path, '/')
	if i <= 0 {
		return "", "", fmt.Errorf("%w: %q is not /type/repo/item", ErrInvalidPath, path)
	}
	repoPath, key = path[:i], path[i+1:]
	if err := checkRepoPath(repoPath); err != nil {
		return "", "", fmt.Errorf("%w: %q is not /type/repo/item", ErrInvalidPath, path)
	}
	if err := checkPart(path, "item", key); err != nil {
		return "", "", err
	}
	return repoPath, key, nil
}

// CheckRepoPath validates a repository path /type/repo.
func CheckRepoPath(path string) error {
	if err := checkRepoPath(path); err != nil {
		return fmt.Errorf("%w: %q is not /type/repo: %w", ErrInvalidPath, path, err)
	}
	return nil
}

func checkRepoPath(path string) error {
	if len(path) < 4 || path[0] != '/' {
		return fmt.Errorf("a repository path starts with /")
	}
	typ, name, ok := strings.Cut(path[1:], "/")
	if !ok {
		return fmt.Errorf("a repository path has two parts")
	}
	if err := checkPart(path, "type", typ); err != nil {
		return err
	}
	return checkPart(path, "repository", name)
}

// checkPart validates one path part.
func checkPart(path, what, part string) error {
	if len(part) == 0 || len(part) > 128 || part == "." || part == ".." {
		return fmt.Errorf("%w: %s %q in %q must be 1–128 characters (not . or ..)", ErrInvalidPath, what, part, path)
	}
	for i := 0; i < len(part); i++ {
		c := part[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %s %q in %q has %q; use A-Z a-z 0-9 . _ -", ErrInvalidPath, what, part, path, c)
		}
	}
	return nil
}
