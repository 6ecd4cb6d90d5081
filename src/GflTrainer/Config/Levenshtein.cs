namespace GflTrainer.Config;

/// <summary>Edit distance (insertions, deletions, substitutions), used to suggest the key a typo meant.</summary>
internal static class Levenshtein
{
    public static int Distance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }

    /// <summary>The closest candidate if it is close enough to be a typo: at most max(2, |word|/3) edits.</summary>
    public static string? Nearest(string word, IEnumerable<string> candidates)
    {
        int limit = Math.Max(2, word.Length / 3);
        return candidates.Select(c => (c, d: Distance(word, c)))
            .Where(x => x.d <= limit)
            .OrderBy(x => x.d).ThenBy(x => x.c, StringComparer.Ordinal)
            .Select(x => x.c).FirstOrDefault();
    }
}
