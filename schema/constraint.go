package schema

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goatdb/goatdb/item"
)

// validator compiles a file field's constraints ("min", "max",
// "maxLength", "enum") into one Validate func, or nil if it has none.
func (fj *fieldJSON) validator(t item.Type) (func(item.Value) error, error) {
	var checks []func(item.Value) error
	if fj.Min != nil || fj.Max != nil {
		c, err := rangeCheck(t, fj.Min, fj.Max)
		if err != nil {
			return nil, err
		}
		checks = append(checks, c)
	}
	if fj.MaxLength != nil {
		c, err := lengthCheck(t, *fj.MaxLength)
		if err != nil {
			return nil, err
		}
		checks = append(checks, c)
	}
	if fj.Enum != nil {
		c, err := enumCheck(t, fj.Enum)
		if err != nil {
			return nil, err
		}
		checks = append(checks, c)
	}
	return allOf(checks), nil
}

func allOf(checks []func(item.Value) error) func(item.Value) error {
	if len(checks) == 0 {
		return nil
	}
	return func(v item.Value) error {
		for _, c := range checks {
			if err := c(v); err != nil {
				return err
			}
		}
		return nil
	}
}

func rangeCheck(t item.Type, lo, hi *float64) (func(item.Value) error, error) {
	if t != item.TypeNumber && t != item.TypeInt {
		return nil, fmt.Errorf(`"min" and "max" apply to number and int fields, not %s`, t)
	}
	if lo != nil && hi != nil && *lo > *hi {
		return nil, fmt.Errorf(`"min" %s is more than "max" %s`, num(*lo), num(*hi))
	}
	return func(v item.Value) error {
		switch f := v.Float(); {
		case lo != nil && f < *lo:
			return fmt.Errorf("%s is less than the minimum %s", num(f), num(*lo))
		case hi != nil && f > *hi:
			return fmt.Errorf("%s is more than the maximum %s", num(f), num(*hi))
		}
		return nil
	}, nil
}

func lengthCheck(t item.Type, n int) (func(item.Value) error, error) {
	if t != item.TypeString {
		return nil, fmt.Errorf(`"maxLength" applies to string fields, not %s`, t)
	}
	if n < 0 {
		return nil, fmt.Errorf(`"maxLength" %d is negative`, n)
	}
	return func(v item.Value) error {
		if l := utf8.RuneCountInString(v.Str()); l > n {
			return fmt.Errorf("length %d is more than the maximum %d", l, n)
		}
		return nil
	}, nil
}

func enumCheck(t item.Type, allowed []string) (func(item.Value) error, error) {
	if t != item.TypeString {
		return nil, fmt.Errorf(`"enum" applies to string fields, not %s`, t)
	}
	if len(allowed) == 0 {
		return nil, errors.New(`"enum" is empty`)
	}
	sorted := slices.Sorted(slices.Values(allowed))
	if i := firstRepeat(sorted); i >= 0 {
		return nil, fmt.Errorf(`"enum" lists %s twice`, quote(sorted[i]))
	}
	list := quoteAll(allowed)
	return func(v item.Value) error {
		if _, ok := slices.BinarySearch(sorted, v.Str()); !ok {
			return fmt.Errorf("%s is not one of %s", brief(v), list)
		}
		return nil
	}, nil
}

func firstRepeat(sorted []string) int {
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return i
		}
	}
	return -1
}

func quoteAll(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = quote(s)
	}
	return strings.Join(q, ", ")
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
