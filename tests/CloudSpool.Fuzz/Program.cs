using CloudSpool.Fuzz;
using SharpFuzz;

// CloudSpool.Fuzz TARGET                  under afl-fuzz: the SharpFuzz fork server (outside AFL: standard input, once)
// CloudSpool.Fuzz TARGET --replay PATH... every file of each folder through TARGET, every invariant checked
// CloudSpool.Fuzz seeds CORPUS OUT         writes seed inputs for every target from the message corpus into OUT/TARGET/
// Exit status: 0 all good, 1 a finding, 2 usage.
System.Text.Encoding.RegisterProvider(System.Text.CodePagesEncodingProvider.Instance);

if (args is ["seeds", var corpus, var output])
{
    Seeds.Write(corpus, output);
    return 0;
}
if (args.Length == 0 || FuzzTargets.Find(args[0]) is not { } target || (args.Length > 1 && (args[1] != "--replay" || args.Length < 3)))
{
    Console.Error.WriteLine("usage: CloudSpool.Fuzz TARGET [--replay PATH...] | seeds CORPUS OUT");
    Console.Error.WriteLine("targets: " + string.Join(", ", FuzzTargets.All.Select(t => t.Name)));
    return 2;
}

if (args.Length > 1)
{
    var files = Replay.Inputs(args[2..]);
    var failures = Replay.Run(target, files);
    foreach (var failure in failures)
        Console.Error.WriteLine($"{failure.File}: {failure.Problem}");
    Console.WriteLine($"{target.Name}: {files.Count} inputs replayed, {failures.Count} failed");
    return failures.Count == 0 ? 0 : 1;
}

// Out of process: an input that kills the runtime (a stack overflow, an out-of-memory fail-fast) is still reported as a
// crash and saved, instead of taking AFL's fork server down with it.
Fuzzer.OutOfProcess.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    FuzzCheck.Check(target, buffer.ToArray(), checkTime: false);
});
return 0;
