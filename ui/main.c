/* main.c: placeholder until the command layer lands. */
int main(void)
{
    return 0;
}
