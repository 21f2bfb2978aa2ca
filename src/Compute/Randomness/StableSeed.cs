namespace Converter.Compute.Randomness;

/// <summary>
/// Seeds derived from the run seed and a name (FNV-1a), so each tensor's random signs depend only on what it is,
/// not on how many draws came before: a resumed run draws exactly what an uninterrupted one did.
/// </summary>
public static class StableSeed
{
    public static int For(int seed, string name)
    {
        uint hash = 2166136261;
        foreach (var b in BitConverter.GetBytes(seed).Concat(System.Text.Encoding.UTF8.GetBytes(name)))
            hash = (hash ^ b) * 16777619;
        return (int)(hash & 0x7FFFFFFF);
    }

    public static Random Rng(int seed, string name) => new(For(seed, name));
}
