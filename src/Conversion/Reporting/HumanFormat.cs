using System.Globalization;

namespace Converter.Conversion.Reporting;

/// <summary>
/// Sizes and durations for people. Humanizer.Core cannot be used: its static configuration builds an en-US culture,
/// which throws in the globalization-invariant mode the published single-file build runs in.
/// </summary>
public static class HumanFormat
{
    private static readonly string[] Units = ["B", "KiB", "MiB", "GiB", "TiB"];

    public static string Bytes(long bytes)
    {
        double value = bytes;
        int unit = 0;
        while (value >= 1024 && unit < Units.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        return unit == 0 ? $"{bytes} B" : value.ToString("0.0", CultureInfo.InvariantCulture) + " " + Units[unit];
    }

    public static string Duration(TimeSpan t) =>
        t.TotalHours >= 1 ? $"{(int)t.TotalHours} h {t.Minutes:D2} min"
        : t.TotalMinutes >= 1 ? $"{(int)t.TotalMinutes} min {t.Seconds:D2} s"
        : t.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + " s";
}
