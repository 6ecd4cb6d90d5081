using GflTrainer.Tests;

namespace GflTrainer.Coco.Tests;

/// <summary>The cases of Fixtures/cocoeval_bad_input, shared by the library tests here and the <c>gfl eval</c> tests of
/// GflTrainer.Cli.Tests (which link this file).</summary>
public static class CocoBadInputCases
{
    public static IEnumerable<object[]> Cases() =>
        Directory.EnumerateDirectories(TestPaths.Fixtures("cocoeval_bad_input")).Select(Path.GetFileName)
            .Order(StringComparer.Ordinal).Select(name => new object[] { name! });

    public static string CaseFile(string caseName, string file) => TestPaths.Fixtures("cocoeval_bad_input", caseName, file);

    /// <summary>The message we give where pycocotools crashes (the empty list is scored instead).</summary>
    public static readonly Dictionary<string, string> ExpectedErrors = new()
    {
        ["missing_score"] = "has no \"score\"",
        ["unknown_image_id"] = "does not list",
    };

}
