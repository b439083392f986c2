package runtime

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"regexp"

	"github.com/berthsh/berth/pkg/errdefs"
)

// containerNameRE is docker's rule for container names.
var containerNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// validateName checks a user-given container name.
func validateName(name string) error {
	if !containerNameRE.MatchString(name) {
		return fmt.Errorf("invalid container name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at least 2 characters: %w", name, errdefs.ErrInvalidArgument)
	}
	return nil
}

var nameAdjectives = []string{
	"admiring", "adoring", "affectionate", "agitated", "amazing", "angry", "awesome", "beautiful",
	"blissful", "bold", "boring", "brave", "busy", "charming", "clever", "compassionate",
	"competent", "condescending", "confident", "cool", "cranky", "crazy", "dazzling", "determined",
	"distracted", "dreamy", "eager", "ecstatic", "elastic", "elated", "elegant", "eloquent",
	"epic", "exciting", "fervent", "festive", "flamboyant", "focused", "friendly", "frosty",
	"funny", "gallant", "gifted", "goofy", "gracious", "great", "happy", "hardcore",
	"heuristic", "hopeful", "hungry", "infallible", "inspiring", "intelligent", "interesting", "jolly",
	"jovial", "keen", "kind", "laughing", "loving", "lucid", "magical", "modest",
	"musing", "mystifying", "naughty", "nervous", "nice", "nifty", "nostalgic", "objective",
	"optimistic", "peaceful", "pedantic", "pensive", "practical", "priceless", "quirky", "quizzical",
	"recursing", "relaxed", "reverent", "romantic", "sad", "serene", "sharp", "silly",
	"sleepy", "stoic", "strange", "stupefied", "suspicious", "sweet", "tender", "thirsty",
	"trusting", "unruffled", "upbeat", "vibrant", "vigilant", "vigorous", "wizardly", "wonderful",
	"xenodochial", "youthful", "zealous", "zen",
}

var nameSurnames = []string{
	"agnesi", "albattani", "allen", "archimedes", "babbage", "banach", "bardeen", "bartik",
	"bell", "benz", "bhabha", "blackwell", "bohr", "booth", "borg", "bose",
	"brahmagupta", "brattain", "brown", "cannon", "carson", "cerf", "chandrasekhar", "chaplygin",
	"clarke", "curie", "darwin", "davinci", "dijkstra", "dirac", "easley", "einstein",
	"elion", "engelbart", "euclid", "euler", "faraday", "fermat", "fermi", "feynman",
	"franklin", "galileo", "gauss", "goldberg", "goodall", "hamilton", "hawking", "heisenberg",
	"hermann", "hodgkin", "hopper", "hypatia", "jackson", "jang", "johnson", "kalam",
	"kapitsa", "keller", "kepler", "khorana", "knuth", "kowalevski", "lalande", "lamarr",
	"lamport", "leakey", "lederberg", "lehmann", "liskov", "lovelace", "lumiere", "mayer",
	"mccarthy", "mcclintock", "meitner", "mendel", "merkle", "minsky", "mirzakhani", "montalcini",
	"morse", "napier", "nash", "newton", "nightingale", "nobel", "noether", "noyce",
	"pascal", "pasteur", "payne", "perlman", "pike", "poincare", "ptolemy", "raman",
	"ramanujan", "ritchie", "rosalind", "sammet", "shannon", "shockley", "sinoussi", "stonebraker",
	"swanson", "tesla", "thompson", "torvalds", "turing", "varahamihira", "visvesvaraya", "wiles",
	"williams", "wing", "wozniak", "wright", "yalow", "yonath",
}

func randInt(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0
	}
	return int(v.Int64())
}

// generateName returns a docker-style name such as "focused_turing"; with
// retry > 0 a digit is appended, as docker does after a collision.
func generateName(retry int) string {
	name := nameAdjectives[randInt(len(nameAdjectives))] + "_" + nameSurnames[randInt(len(nameSurnames))]
	if name == "boring_wozniak" { // docker's rule: Steve Wozniak is not boring
		name = "happy_wozniak"
	}
	if retry > 0 {
		name = fmt.Sprintf("%s%d", name, randInt(10))
	}
	return name
}

// newID returns a random 64-hex container ID whose short form is not all
// digits (so it cannot be mistaken for a number).
func newID() (string, error) {
	for {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("generate container ID: %w", err)
		}
		id := hex.EncodeToString(b)
		for _, c := range id[:12] {
			if c >= 'a' {
				return id, nil
			}
		}
	}
}
