using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using GflTrainer.Checkpoints;

namespace GflTrainer.Reporting;

/// <summary><c>report.html</c>: one self-contained page per run (images inlined as data URIs, styles and the one small
/// script inline, nothing fetched from the network), rebuilt from the work dir's files after every evaluation: the
/// command to reproduce, final metrics with the per-class table, the AP history, training curves, PR curves, confusion
/// matrix, the mosaic, the data the run read, the checkpoints and the resolved config. Built from files only, so the
/// same work dir gives the same bytes, and <c>gfl report</c> can rebuild it for any run.</summary>
public static class RunReport
{
    public const string FileName = "report.html";

    /// <summary>Where a run keeps <c>gfl data stats</c> output (stats.json and PNGs).</summary>
    public const string DataStatsDir = "data_stats";

    /// <summary>The sections in page order (id, heading); a test checks the browser rendered each.</summary>
    public static IReadOnlyList<(string Id, string Title)> Sections { get; } =
    [
        ("command", "Command"), ("metrics", "Final metrics"), ("history", "Evaluations"), ("curves", "Training curves"),
        ("pr", "Precision-recall and per-class AP"), ("confusion", "Confusion matrix"), ("mosaic", "Validation images"),
        ("data", "Data"), ("checkpoints", "Checkpoints"), ("config", "Configuration"),
    ];

    /// <returns>the path written.</returns>
    public static string Write(string workDir)
    {
        workDir = Path.GetFullPath(workDir);
        if (!Directory.Exists(workDir)) throw new GflConfigException($"{workDir}: no such run directory");
        var html = Build(workDir);
        var path = Path.Combine(workDir, FileName);
        File.WriteAllText(path + ".tmp", html, new UTF8Encoding(false));
        File.Move(path + ".tmp", path, overwrite: true);
        return path;
    }

    static string Build(string workDir)
    {
        var summary = RunSummary.Read(workDir);
        var evals = TrainingPlots.ReadJsonLines(Path.Combine(workDir, "metrics.jsonl"));
        var last = evals.Count > 0 ? evals[^1] : null;
        int? lastEpoch = last is not null && last.TryGetValue("epoch", out var e) ? (int)e : null;
        var evalDir = lastEpoch is { } ep ? Path.Combine(workDir, "eval", $"epoch_{ep}") : null;
        var name = Path.GetFileName(workDir);

        var b = new StringBuilder();
        b.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
        b.Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        b.Append($"<title>gfl run {H(name)}</title><style>{Css}</style><script>{ErrorCounter}</script></head><body>\n");
        b.Append($"<header><h1>gfl run <code>{H(name)}</code></h1><p>{H(workDir)}");
        if (lastEpoch is { } le && last!.TryGetValue("bbox.AP", out var ap))
            b.Append($" &middot; last evaluation: epoch {le}, bbox AP {F(ap)}");
        b.Append("</p><nav>");
        foreach (var (id, title) in Sections) b.Append($"<a href=\"#{id}\">{H(title)}</a> ");
        b.Append("</nav></header>\n");

        Section(b, "command", () =>
        {
            if (summary is null) { b.Append("<p class=\"missing\">run.json not found (a run from an older gfl): the command was not recorded.</p>"); return; }
            b.Append($"<p>As run:</p><pre>{H(summary.Command)}</pre><p>Again, from the saved resolved config and seed " +
                "(the same data, model and schedule; bit-identical on the CPU):</p>");
            b.Append($"<pre>{H(summary.Reproduce)}</pre>");
            b.Append($"<p>seed {summary.Seed}, device {H(summary.Device)}, {summary.WorldSize} process(es), gfl {H(summary.GflVersion)}</p>");
        });

        Section(b, "metrics", () => Metrics(b, evalDir, lastEpoch));
        Section(b, "history", () => History(b, evals));
        Section(b, "curves", () =>
        {
            foreach (var (file, alt) in new[] { ("loss.png", "training loss"), ("lr.png", "learning rate"), ("ap.png", "validation AP") })
                Image(b, Path.Combine(workDir, "plots", file), alt);
        });
        Section(b, "pr", () =>
        {
            Image(b, evalDir is null ? null : Path.Combine(evalDir, EvaluationPlots.PrCurves50Png), "precision-recall at IoU 0.5");
            Image(b, evalDir is null ? null : Path.Combine(evalDir, EvaluationPlots.PrCurves5095Png), "precision-recall at IoU 0.5:0.95");
            Image(b, evalDir is null ? null : Path.Combine(evalDir, EvaluationPlots.PerClassApPng), "AP per class");
        });
        Section(b, "confusion", () =>
        {
            Image(b, evalDir is null ? null : Path.Combine(evalDir, EvaluationPlots.ConfusionPng), "confusion matrix, counts");
            Image(b, evalDir is null ? null : Path.Combine(evalDir, EvaluationPlots.ConfusionNormalisedPng), "confusion matrix, row-normalised");
        });
        Section(b, "mosaic", () => Image(b, evalDir is null ? null : Path.Combine(evalDir, EvaluationPlots.MosaicJpg), "validation images"));
        Section(b, "data", () => Data(b, summary, Path.Combine(workDir, DataStatsDir)));
        Section(b, "checkpoints", () => Checkpoints(b, Path.Combine(workDir, "checkpoints")));
        Section(b, "config", () =>
        {
            var cfg = Path.Combine(workDir, "config.yaml");
            if (File.Exists(cfg)) b.Append($"<pre class=\"config\">{H(File.ReadAllText(cfg))}</pre>");
            else b.Append("<p class=\"missing\">config.yaml not found.</p>");
        });
        b.Append($"<script>{Script}</script>\n</body></html>\n");
        return b.ToString();
    }

    static void Section(StringBuilder b, string id, Action body)
    {
        var title = Sections.First(s => s.Id == id).Title;
        b.Append($"<section id=\"{id}\"><h2>{H(title)}</h2>\n");
        body();
        b.Append("</section>\n");
    }

    static void Metrics(StringBuilder b, string? evalDir, int? epoch)
    {
        var metricsPath = evalDir is null ? null : Path.Combine(evalDir, "metrics.json");
        if (metricsPath is null || !File.Exists(metricsPath)) { b.Append("<p class=\"missing\">No evaluation yet.</p>"); return; }
        using var doc = JsonDocument.Parse(File.ReadAllBytes(metricsPath));
        var root = doc.RootElement;
        b.Append($"<p>Epoch {epoch}, <code>eval/epoch_{epoch}/</code>.</p><table class=\"stats\"><tr>");
        var bbox = root.GetProperty("bbox");
        foreach (var p in bbox.EnumerateObject()) b.Append($"<th>{H(p.Name)}</th>");
        b.Append("</tr><tr>");
        foreach (var p in bbox.EnumerateObject()) b.Append($"<td>{F(p.Value.GetDouble())}</td>");
        b.Append("</tr></table>");
        // Per class: AP, AP50 and recall from pr_curves.json when the plots were written, else AP from metrics.json.
        var prPath = Path.Combine(evalDir!, EvaluationPlots.PrCurvesJson);
        b.Append("<table class=\"classes\"><tr><th>id</th><th>class</th><th>AP</th><th>AP50</th><th>recall@0.5</th></tr>");
        if (File.Exists(prPath))
        {
            using var pr = JsonDocument.Parse(File.ReadAllBytes(prPath));
            foreach (var c in pr.RootElement.GetProperty("categories").EnumerateArray())
                b.Append($"<tr><td>{c.GetProperty("id").GetInt64()}</td><td>{H(c.GetProperty("name").GetString() ?? "")}</td>" +
                    $"<td>{F(Num(c, "AP"))}</td><td>{F(Num(c, "AP50"))}</td><td>{F(Num(c, "recall_iou50"))}</td></tr>");
        }
        else if (root.TryGetProperty("per_category", out var cats) && cats.ValueKind == JsonValueKind.Object)
            foreach (var c in cats.EnumerateObject())
                b.Append($"<tr><td></td><td>{H(c.Name)}</td><td>{F(c.Value.GetDouble())}</td><td></td><td></td></tr>");
        b.Append("</table><p>n/a: no ground truth of the class in the split.</p>");
    }

    static double? Num(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.GetDouble() >= 0 ? v.GetDouble() : null;

    static void History(StringBuilder b, List<Dictionary<string, double>> evals)
    {
        if (evals.Count == 0) { b.Append("<p class=\"missing\">No evaluation yet.</p>"); return; }
        var keys = new[] { "AP", "AP50", "AP75", "APs", "APm", "APl", "AR100" };
        b.Append("<table class=\"stats\"><tr><th>epoch</th><th>iteration</th>");
        foreach (var k in keys) b.Append($"<th>{k}</th>");
        b.Append("</tr>");
        foreach (var row in evals)
        {
            b.Append($"<tr><td>{G(row, "epoch")}</td><td>{G(row, "iter")}</td>");
            foreach (var k in keys) b.Append($"<td>{(row.TryGetValue("bbox." + k, out var v) ? F(v) : "")}</td>");
            b.Append("</tr>");
        }
        b.Append("</table>");
    }

    static void Data(StringBuilder b, RunSummary? summary, string statsDir)
    {
        DataTable(b, summary);
        var statsPath = Path.Combine(statsDir, "stats.json");
        if (!File.Exists(statsPath))
        {
            b.Append("<p class=\"missing\">No data statistics (<code>gfl data stats --config CONFIG --out " + H(statsDir) +
                "</code> adds box sizes and anchor coverage here).</p>");
            return;
        }
        using var doc = JsonDocument.Parse(File.ReadAllBytes(statsPath));
        foreach (var split in doc.RootElement.GetProperty("splits").EnumerateArray())
        {
            var name = split.GetProperty("split").GetString() ?? "";
            var c = split.GetProperty("coverage");
            long gts = c.GetProperty("gts").GetInt64(), without = c.GetProperty("without_positive").GetInt64();
            b.Append($"<h3>{H(name)}</h3><p>Anchor coverage ({H(c.GetProperty("assigner").GetString() ?? "")}): {without} of {gts} " +
                $"ground truths get no positive anchor ({(gts > 0 ? 100.0 * without / gts : 0):0.0} %), at the configured img_scale and anchors.</p>");
            foreach (var (suffix, alt) in new[] { ("box_size", "box size after resize"), ("anchor_coverage", "anchor coverage"),
                ("boxes_per_class", "boxes per class"), ("objects_per_image", "objects per image") })
                Image(b, Path.Combine(statsDir, $"{name}_{suffix}.png"), $"{name}: {alt}");
        }
    }

    static void DataTable(StringBuilder b, RunSummary? summary)
    {
        if (summary is null || summary.Splits.Count == 0) { b.Append("<p class=\"missing\">run.json not found.</p>"); return; }
        var classes = summary.Splits.SelectMany(s => s.BoxesPerClass.Keys).Distinct().ToList();
        b.Append("<table class=\"classes\"><tr><th></th>");
        foreach (var s in summary.Splits) b.Append($"<th>{H(s.Name)}</th>");
        b.Append("</tr>");
        void Row(string label, Func<RunSplitSummary, string> cell)
        {
            b.Append($"<tr><th>{H(label)}</th>");
            foreach (var s in summary.Splits) b.Append($"<td>{H(cell(s))}</td>");
            b.Append("</tr>");
        }
        Row("annotations", s => s.AnnFile);
        Row("images", s => s.Images.ToString(CultureInfo.InvariantCulture));
        Row("images without boxes", s => s.ImagesWithoutBoxes.ToString(CultureInfo.InvariantCulture));
        Row("boxes", s => s.Boxes.ToString(CultureInfo.InvariantCulture));
        Row("crowd / ignored regions", s => s.CrowdRegions.ToString(CultureInfo.InvariantCulture));
        foreach (var c in classes) Row("  " + c, s => s.BoxesPerClass.TryGetValue(c, out var n) ? n.ToString(CultureInfo.InvariantCulture) : "0");
        b.Append("</table>");
    }

    static void Checkpoints(StringBuilder b, string root)
    {
        var dirs = Directory.Exists(root) ? Directory.EnumerateDirectories(root).Order(StringComparer.Ordinal).ToList() : [];
        var rows = dirs.Select(d => (Name: Path.GetFileName(d), Meta: CheckpointStore.ReadMeta(d))).Where(r => r.Meta is not null).ToList();
        if (rows.Count == 0) { b.Append("<p class=\"missing\">No complete checkpoint.</p>"); return; }
        b.Append("<table class=\"classes\"><tr><th>checkpoint</th><th>epoch</th><th>iteration</th><th>best AP so far</th><th>reason</th><th>size</th></tr>");
        foreach (var (n, m) in rows)
        {
            var (meta, bytes) = m!.Value;
            b.Append($"<tr><td><code>checkpoints/{H(n)}</code></td><td>{meta.Epoch}</td><td>{meta.Iteration}</td>" +
                $"<td>{(meta.BestAp >= 0 ? F(meta.BestAp) : "")}</td><td>{H(meta.Reason)}</td><td>{bytes / (1024.0 * 1024.0):0.0} MB</td></tr>");
        }
        b.Append("</table>");
    }

    /// <summary>An image inlined as a data URI; a missing file is said so in place (never a broken link).</summary>
    static void Image(StringBuilder b, string? path, string alt)
    {
        if (path is null || !File.Exists(path)) { b.Append($"<p class=\"missing\">{H(alt)}: not written yet.</p>"); return; }
        var mime = path.EndsWith(".jpg", StringComparison.OrdinalIgnoreCase) ? "image/jpeg" : "image/png";
        b.Append($"<figure><img alt=\"{H(alt)}\" src=\"data:{mime};base64,{Convert.ToBase64String(File.ReadAllBytes(path))}\">" +
            $"<figcaption>{H(alt)} ({H(Path.GetFileName(path))})</figcaption></figure>\n");
    }

    static string H(string s) => WebUtility.HtmlEncode(s);
    static string F(double v) => v < 0 ? "n/a" : v.ToString("0.000", CultureInfo.InvariantCulture);
    static string F(double? v) => v is { } x ? F(x) : "";
    static string G(Dictionary<string, double> row, string key) => row.TryGetValue(key, out var v) ? v.ToString(CultureInfo.InvariantCulture) : "";

    const string Css = """
        body{font-family:system-ui,-apple-system,"DejaVu Sans",sans-serif;margin:0 auto;max-width:1200px;padding:0 16px 40px;color:#222}
        header{border-bottom:1px solid #ddd;margin-bottom:8px} h1{font-size:1.5em} h2{border-bottom:1px solid #eee;padding-top:12px}
        nav a{margin-right:10px;font-size:.9em} pre{background:#f6f8fa;padding:8px;overflow-x:auto;font-size:.85em}
        pre.config{max-height:480px} table{border-collapse:collapse;margin:8px 0;font-size:.9em}
        td,th{border:1px solid #ddd;padding:3px 8px;text-align:right} th{background:#f3f3f3} td:nth-child(2){text-align:left}
        figure{display:inline-block;margin:6px} img{max-width:100%;border:1px solid #eee} figcaption{font-size:.8em;color:#666}
        .missing{color:#a60}
        """;

    /// <summary>Marks the page rendered (every image decoded, no script error) on the root element, so a headless
    /// browser check reads one attribute.</summary>
    const string ErrorCounter = "window.gflErrors=0;window.addEventListener('error',function(){window.gflErrors++;},true);";

    const string Script = """
        (function(){window.addEventListener('load',function(){var imgs=document.images,broken=0;
        for(var i=0;i<imgs.length;i++){if(!imgs[i].complete||imgs[i].naturalWidth===0)broken++;}
        var r=document.documentElement;r.setAttribute('data-images',String(imgs.length));r.setAttribute('data-broken-images',String(broken));
        r.setAttribute('data-sections',String(document.querySelectorAll('section>h2').length));
        r.setAttribute('data-rendered',(broken===0&&window.gflErrors===0)?'ok':'errors');});})();
        """;
}
