namespace CloudSpool.TestSupport.Fixtures;

/// <summary>
/// Base of test classes that need a real upstream (a private Dovecot) and a real spool (the shared Azurite
/// with a private name prefix), started before each test and stopped after it.
/// </summary>
public abstract class DovecotAndSpoolTest : IAsyncLifetime
{
    protected DovecotServer Dovecot { get; private set; } = null!;
    protected PullHarness Spool { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Dovecot = await DovecotServer.StartAsync();
        Spool = await PullHarness.StartAsync();
    }

    public virtual async Task DisposeAsync()
    {
        await Spool.DisposeAsync();
        await Dovecot.DisposeAsync();
    }
}
