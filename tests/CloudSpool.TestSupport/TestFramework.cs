using Xunit.Abstractions;
using Xunit.Sdk;

namespace CloudSpool.TestSupport;

/// <summary>
/// xunit's own test framework, after the set-up every test assembly needs before its first test runs. A test assembly
/// names it once: <c>[assembly: Xunit.TestFramework(TestFramework.TypeName, TestFramework.AssemblyName)]</c>.
/// </summary>
public sealed class TestFramework : XunitTestFramework
{
    public const string TypeName = "CloudSpool.TestSupport.TestFramework";
    public const string AssemblyName = "CloudSpool.TestSupport";

    public TestFramework(IMessageSink messageSink)
        : base(messageSink) => TestEncodings.Register();
}
