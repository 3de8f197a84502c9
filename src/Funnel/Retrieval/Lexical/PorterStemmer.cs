namespace Funnel.Retrieval.Lexical;

/// <summary>
/// The original Porter (1980) stemmer exactly as Lucene's <c>PorterStemmer</c> implements it, i.e. Martin Porter's
/// reference C version with its two documented departures ("bli"→"ble", "logi"→"log") and no stemming of words
/// of one or two characters. Input is expected lower-case; any character other than a–z counts as a consonant.
/// </summary>
internal static class PorterStemmer
{
    /// <summary>The stem of <paramref name="word"/> (the word itself when nothing applies).</summary>
    public static string Stem(string word)
    {
        if (word.Length <= 2) return word;
        Span<char> buffer = word.Length <= 256 ? stackalloc char[word.Length] : new char[word.Length];
        word.AsSpan().CopyTo(buffer);
        int length = Stem(buffer);
        return length == word.Length && buffer.SequenceEqual(word) ? word : new string(buffer[..length]);
    }

    /// <summary>Stems <paramref name="word"/> in place and returns the stem's length; a stem is never longer than its word.</summary>
    public static int Stem(Span<char> word)
    {
        if (word.Length <= 2) return word.Length;
        var s = new State(word);
        s.Step1ab();
        s.Step1c();
        s.Step2();
        s.Step3();
        s.Step4();
        s.Step5();
        return s.K + 1;
    }

    // Names follow Porter's C code: b is the word, k the index of its last character, j the end of the stem
    // left by the last successful Ends().
    private ref struct State(Span<char> b)
    {
        private readonly Span<char> _b = b;
        public int K = b.Length - 1;
        private int _j;

        private readonly bool Cons(int i) => _b[i] switch
        {
            'a' or 'e' or 'i' or 'o' or 'u' => false,
            'y' => i == 0 || !Cons(i - 1),
            _ => true,
        };

        /// <summary>m, the number of vowel-consonant sequences in b[0..j].</summary>
        private readonly int M()
        {
            int n = 0, i = 0;
            while (true)
            {
                if (i > _j) return n;
                if (!Cons(i)) break;
                i++;
            }
            i++;
            while (true)
            {
                while (true)
                {
                    if (i > _j) return n;
                    if (Cons(i)) break;
                    i++;
                }
                i++;
                n++;
                while (true)
                {
                    if (i > _j) return n;
                    if (!Cons(i)) break;
                    i++;
                }
                i++;
            }
        }

        private readonly bool VowelInStem()
        {
            for (int i = 0; i <= _j; i++)
                if (!Cons(i)) return true;
            return false;
        }

        private readonly bool DoubleC(int j) => j >= 1 && _b[j] == _b[j - 1] && Cons(j);

        /// <summary>consonant-vowel-consonant ending at i, the last consonant not w, x or y (e.g. hop, not snow).</summary>
        private readonly bool Cvc(int i)
        {
            if (i < 2 || !Cons(i) || Cons(i - 1) || !Cons(i - 2)) return false;
            char ch = _b[i];
            return ch is not ('w' or 'x' or 'y');
        }

        private bool Ends(string s)
        {
            int o = K - s.Length + 1;
            if (o < 0 || !_b.Slice(o, s.Length).SequenceEqual(s)) return false;
            _j = K - s.Length;
            return true;
        }

        private void SetTo(string s)
        {
            s.AsSpan().CopyTo(_b[(_j + 1)..]);
            K = _j + s.Length;
        }

        private void R(string s)
        {
            if (M() > 0) SetTo(s);
        }

        /// <summary>Plurals and -ed/-ing: caresses→caress, ponies→poni, cats→cat, feed→feed, agreed→agree, hopping→hop, filing→file.</summary>
        public void Step1ab()
        {
            if (_b[K] == 's')
            {
                if (Ends("sses")) K -= 2;
                else if (Ends("ies")) SetTo("i");
                else if (_b[K - 1] != 's') K--;
            }
            if (Ends("eed"))
            {
                if (M() > 0) K--;
            }
            else if ((Ends("ed") || Ends("ing")) && VowelInStem())
            {
                K = _j;
                if (Ends("at")) SetTo("ate");
                else if (Ends("bl")) SetTo("ble");
                else if (Ends("iz")) SetTo("ize");
                else if (DoubleC(K))
                {
                    char ch = _b[K--];
                    if (ch is 'l' or 's' or 'z') K++;
                }
                else if (M() == 1 && Cvc(K)) SetTo("e");
            }
        }

        /// <summary>Terminal y → i when there is another vowel in the stem: happy→happi, sky→sky.</summary>
        public void Step1c()
        {
            if (Ends("y") && VowelInStem()) _b[K] = 'i';
        }

        /// <summary>Double suffixes to single ones when m &gt; 0: relational→relate, conditional→condition, ….</summary>
        public void Step2()
        {
            if (K == 0) return;
            switch (_b[K - 1])
            {
                case 'a':
                    if (Ends("ational")) { R("ate"); break; }
                    if (Ends("tional")) { R("tion"); break; }
                    break;
                case 'c':
                    if (Ends("enci")) { R("ence"); break; }
                    if (Ends("anci")) { R("ance"); break; }
                    break;
                case 'e':
                    if (Ends("izer")) { R("ize"); break; }
                    break;
                case 'l':
                    if (Ends("bli")) { R("ble"); break; }
                    if (Ends("alli")) { R("al"); break; }
                    if (Ends("entli")) { R("ent"); break; }
                    if (Ends("eli")) { R("e"); break; }
                    if (Ends("ousli")) { R("ous"); break; }
                    break;
                case 'o':
                    if (Ends("ization")) { R("ize"); break; }
                    if (Ends("ation")) { R("ate"); break; }
                    if (Ends("ator")) { R("ate"); break; }
                    break;
                case 's':
                    if (Ends("alism")) { R("al"); break; }
                    if (Ends("iveness")) { R("ive"); break; }
                    if (Ends("fulness")) { R("ful"); break; }
                    if (Ends("ousness")) { R("ous"); break; }
                    break;
                case 't':
                    if (Ends("aliti")) { R("al"); break; }
                    if (Ends("iviti")) { R("ive"); break; }
                    if (Ends("biliti")) { R("ble"); break; }
                    break;
                case 'g':
                    if (Ends("logi")) R("log");
                    break;
            }
        }

        /// <summary>-ic-, -full, -ness etc. when m &gt; 0.</summary>
        public void Step3()
        {
            switch (_b[K])
            {
                case 'e':
                    if (Ends("icate")) { R("ic"); break; }
                    if (Ends("ative")) { R(""); break; }
                    if (Ends("alize")) { R("al"); break; }
                    break;
                case 'i':
                    if (Ends("iciti")) R("ic");
                    break;
                case 'l':
                    if (Ends("ical")) { R("ic"); break; }
                    if (Ends("ful")) R("");
                    break;
                case 's':
                    if (Ends("ness")) R("");
                    break;
            }
        }

        /// <summary>Takes off -ant, -ence etc. in context &lt;c&gt;vcvc&lt;v&gt; (m &gt; 1).</summary>
        public void Step4()
        {
            if (K == 0) return;
            bool found = _b[K - 1] switch
            {
                'a' => Ends("al"),
                'c' => Ends("ance") || Ends("ence"),
                'e' => Ends("er"),
                'i' => Ends("ic"),
                'l' => Ends("able") || Ends("ible"),
                'n' => Ends("ant") || Ends("ement") || Ends("ment") || Ends("ent"),
                'o' => (Ends("ion") && _j >= 0 && _b[_j] is 's' or 't') || Ends("ou"),
                's' => Ends("ism"),
                't' => Ends("ate") || Ends("iti"),
                'u' => Ends("ous"),
                'v' => Ends("ive"),
                'z' => Ends("ize"),
                _ => false,
            };
            if (found && M() > 1) K = _j;
        }

        /// <summary>Removes a final -e if m &gt; 1 (or m = 1 and not cvc), and -ll → -l if m &gt; 1.</summary>
        public void Step5()
        {
            _j = K;
            if (_b[K] == 'e')
            {
                int a = M();
                if (a > 1 || (a == 1 && !Cvc(K - 1))) K--;
            }
            if (_b[K] == 'l' && DoubleC(K) && M() > 1) K--;
        }
    }
}
