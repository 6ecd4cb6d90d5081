using GflTrainer.Reporting;
using Xunit;

namespace GflTrainer.Tests.Reporting;

public class TrainingPlotsTests
{
    [Fact]
    public void Render_WritesPngsFromLogs_AndSkipsATruncatedLine()
    {
        var dir = Directory.CreateTempSubdirectory("gfl-plots").FullName;
        File.WriteAllLines(Path.Combine(dir, "log.jsonl"), new[]
        {
            "{\"epoch\":1,\"iter\":10,\"lr\":0.001,\"loss\":2.5,\"loss_cls\":1.0,\"loss_bbox\":1.0,\"loss_dfl\":0.5}",
            "{\"epoch\":1,\"iter\":20,\"lr\":0.002,\"loss\":2.0,\"loss_cls\":0.8,\"loss_bbox\":0.8,\"loss_dfl\":0.4}",
            "{\"epoch\":1,\"iter\":30,\"lr\":0.0",   // cut by a kill mid-write
        });
        File.WriteAllLines(Path.Combine(dir, "metrics.jsonl"), new[]
        {
            "{\"epoch\":1,\"iter\":20,\"bbox\":{\"AP\":0.1,\"AP50\":0.3,\"AP75\":0.05}}",
            "{\"epoch\":2,\"iter\":40,\"bbox\":{\"AP\":0.2,\"AP50\":0.5,\"AP75\":0.1}}",
        });
        var written = TrainingPlots.Render(dir);
        Assert.Equal(3, written.Count);
        foreach (var p in written)
        {
            var bytes = File.ReadAllBytes(p);
            Assert.True(bytes.Length > 1000);
            Assert.Equal(0x89, bytes[0]); Assert.Equal((byte)'P', bytes[1]); // PNG signature
        }
        Assert.Equal(2, TrainingPlots.ReadJsonLines(Path.Combine(dir, "log.jsonl")).Count);
    }
}
