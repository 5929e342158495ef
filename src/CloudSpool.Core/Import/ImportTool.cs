namespace CloudSpool.Core.Import;

/// <summary>The mail fetchers whose configuration `cloudspool account import` reads.</summary>
public enum ImportTool
{
    Fetchmail,
    Mpop,
    Getmail,
}
