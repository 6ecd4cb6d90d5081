using GflTrainer.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GflTrainer.Tests.Training;

/// <summary>The fp16 loss scaler kept on the device (runtime.loss_reads: log_interval) against the host one.</summary>
public sealed class LossScalerTests
{
    /// <summary>The same scale and count after every step of a sequence of clean steps, overflows and steps that do not
    /// count, through growth and back-off; the same scaled loss and unscaled gradients; a restore reaches the device.</summary>
    [Theory]
    [InlineData(2.0, 0.5)]
    [InlineData(3.0, 0.3)]
    public void The_device_scaler_follows_the_host_policy(double growth, double backoff)
    {
        using var scope = NewDisposeScope();
        var host = new LossScaler(initScale: 1024, growthFactor: growth, backoffFactor: backoff, growthInterval: 3);
        var device = new LossScaler(initScale: 1024, growthFactor: growth, backoffFactor: backoff, growthInterval: 3);
        device.MoveToDevice(CPU);
        Assert.True(device.OnDevice);
        Assert.Throws<InvalidOperationException>(() => device.Update(true));
        Assert.Throws<InvalidOperationException>(() => host.Update(tensor(true), tensor(true)));
        // (finite, counts): counts false is a step whose loss was not finite or that came after a halt.
        (bool Finite, bool Counts)[] steps =
            [(true, true), (true, true), (true, true), (false, true), (true, false), (false, false), (true, true),
             (true, true), (true, true), (true, true), (false, true), (false, true), (true, true)];
        var loss = tensor(0.7311f);
        foreach (var (finite, counts) in steps)
        {
            Assert.True(host.ScaleLoss(loss).equal(device.ScaleLoss(loss)).all().item<bool>());
            var g1 = randn(17); var g2 = g1.clone();
            host.Unscale([g1]); device.Unscale([g2]);
            Assert.True(g1.equal(g2).all().item<bool>());
            if (counts) host.Update(finite);
            device.Update(tensor(finite), tensor(counts));
            Assert.Equal(host.Scale, device.Scale);
            Assert.Equal(host.CleanSteps, device.CleanSteps);
        }
        Assert.NotEqual(1024, host.Scale);   // the sequence grew and backed off
        device.Restore(512, 2);
        Assert.Equal((512.0, 2), (device.Scale, device.CleanSteps));
    }
}
