package bridge

import "github.com/jetsuite/jetsuite/services/generator"

type demoRecord struct {
	id    int64
	value any
}

// demoRating is rating n of the embedded ratings producer: the generator's ratings quickstart,
// so that the embedded demo's ratings look exactly like the generator's own.
func demoRating(seed, n uint64) demoRecord {
	r := generator.Rating(seed, n)
	return demoRecord{id: r.RatingID, value: r}
}
